"""The original's model folder: name-based TF1 checkpoints, the metagraph and the `checkpoint` file.

The original saved `tf.train.Saver(tf.trainable_variables(), max_to_keep=3)` to
`model-<subdir>.ckpt-<step>` after every epoch and wrote `model-<subdir>.meta` once. The
checkpoint here is the same V2 bundle under the same variable names (written by the SaveV2 kernel
itself), so facenet.load_model, freeze_graph.py, tf.train.load_checkpoint and a TF1
`Saver.restore` read it. The metagraph holds the inference graph on those variables, their saver
and the original's `input`, `phase_train` and `embeddings` tensors. Every file is written under a temporary name and moved into
place, the `checkpoint` state file last, so a killed run leaves the previous checkpoint intact.
"""
import logging
import os
import re
import time

import numpy as np
import tensorflow as tf

from facenet_tf2.export import save_keras, write_frozen_graph
from facenet_tf2.files import write_bytes_atomically
from facenet_tf2.tf1_graphs import inference_metagraph
from facenet_tf2.weights import model_scope

log = logging.getLogger(__name__)

_DATA_SUFFIX = '.data-00000-of-00001'


def checkpoint_prefix(model_dir, model_name, step):
    return os.path.join(model_dir, f'model-{model_name}.ckpt-{int(step)}')


def save_name_based_checkpoint(weights, model_dir, model_name, step, max_to_keep=3):
    """Writes {original variable name: array} as `model-<model_name>.ckpt-<step>` in model_dir,
    updates the `checkpoint` state file and keeps the newest `max_to_keep` checkpoints."""
    prefix = checkpoint_prefix(model_dir, model_name, step)
    temporary = os.path.join(model_dir, f'.tmp-{os.path.basename(prefix)}')
    names = sorted(weights)
    tf.raw_ops.SaveV2(prefix=temporary, tensor_names=names, shape_and_slices=[''] * len(names),
                      tensors=[tf.convert_to_tensor(np.asarray(weights[name])) for name in names])
    os.replace(temporary + _DATA_SUFFIX, prefix + _DATA_SUFFIX)
    os.replace(temporary + '.index', prefix + '.index')  # a reader looks for the index: it goes last
    kept = [p for p in _existing_checkpoints(model_dir, model_name) if p != os.path.basename(prefix)]
    kept = (kept + [os.path.basename(prefix)])[-max_to_keep:]
    _write_state(model_dir, kept)
    for old in set(_existing_checkpoints(model_dir, model_name)) - set(kept):
        for suffix in ('.index', _DATA_SUFFIX):
            if os.path.exists(os.path.join(model_dir, old + suffix)):
                os.remove(os.path.join(model_dir, old + suffix))
    return prefix


def _existing_checkpoints(model_dir, model_name):
    pattern = re.compile(rf'^model-{re.escape(model_name)}\.ckpt-(\d+)\.index$')
    found = [(int(m.group(1)), name[:-len('.index')]) for name in os.listdir(model_dir)
             for m in [pattern.match(name)] if m]
    return [name for _, name in sorted(found)]


def _write_state(model_dir, checkpoints):
    lines = [f'model_checkpoint_path: "{checkpoints[-1]}"'] + \
            [f'all_model_checkpoint_paths: "{name}"' for name in checkpoints]
    write_bytes_atomically(os.path.join(model_dir, 'checkpoint'), ('\n'.join(lines) + '\n').encode())


def write_metagraph(weights, filename, image_size, network):
    """The original's `model-<subdir>.meta`: the inference graph of `network` (Keras) reading a TF1
    variable per entry of `weights` (shapes and dtypes only: the values live in the checkpoints),
    the Saver that restores them, and tensors `input`, `phase_train` and `embeddings`
    (tf1_graphs.inference_metagraph), so `import_meta_graph` + `restore` code serves embeddings."""
    metagraph = inference_metagraph(network, model_scope(network), weights, image_size)
    write_bytes_atomically(filename, metagraph.SerializeToString())


def save_epoch_checkpoint(trainer, model_dir, subdir, image_size):
    """The original's per-epoch save: the name-based checkpoint of what its Saver held (the
    trainable variables, BatchNorm moving statistics and the Logits layer included; not the
    centres), and the metagraph once."""
    step = int(trainer.global_step.numpy())
    start = time.time()
    weights = {name: variable.numpy() for name, variable in trainer.named_variables().items() if name != 'centers'}
    save_name_based_checkpoint(weights, model_dir, subdir, step)
    metagraph = os.path.join(model_dir, f'model-{subdir}.meta')
    if not os.path.exists(metagraph):
        write_metagraph(weights, metagraph, image_size, trainer.network)
    log.info(f'Variables saved in {time.time() - start:.2f} seconds')


def export_embedding_network(trainer, model_dir, subdir, image_size):
    """The EMA embedding network as `<subdir>.pb` (frozen: input:0, phase_train:0, embeddings:0)
    and `<subdir>.keras` in the model folder; returns the .pb path."""
    trainer.swap_averages()
    try:
        frozen = os.path.join(model_dir, f'{subdir}.pb')
        write_frozen_graph(trainer.network, frozen, image_size)
        save_keras(trainer.network, os.path.join(model_dir, f'{subdir}.keras'))
    finally:
        trainer.swap_averages()
    log.info(f'Exported the moving-average embedding network to {frozen}')
    return frozen
