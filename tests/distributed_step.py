"""Runs a few train steps of the training core on one fixed global batch under a tf.distribute
strategy and writes what they computed to an .npz: the distribution tests compare these files.

    python tests/distributed_step.py {none,mirrored,multi_worker} OUT.npz [LOSS]

mirrored splits this process's CPU into two logical devices; multi_worker reads TF_CONFIG (one
process per worker, the chief writes the file). The network is models.dummy with synchronised
BatchNorm, the softmax head, centre loss and prelogits norm, every variable set from a seeded
generator by name, so every process starts from the same weights. LOSS: softmax (default), or
a triplet strategy of train_tripletloss.py (no head; 4 people x 3 images, 4 triplets for vggface).
"""
import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src'))

from facenet_tf2.training.core import Trainer, make_strategy  # noqa: E402
from facenet_tf2.training.softmax import softmax_loss, softmax_modules  # noqa: E402
from facenet_tf2.training.triplet_training import offline_triplet_loss, online_triplet_loss  # noqa: E402
from models import dummy  # noqa: E402

GLOBAL_BATCH, IMAGE_SIZE, EMBEDDING_SIZE, NROF_CLASSES, STEPS = 8, 8, 8, 4, 3


def loss_and_modules(loss):
    if loss == 'softmax':
        return softmax_loss(1.0, 5e-4, 0.01), softmax_modules(NROF_CLASSES, EMBEDDING_SIZE, 5e-4, 0.9)
    return (offline_triplet_loss(0.5) if loss == 'vggface' else online_triplet_loss(loss, 0.5)), {}


def triplet_layout(loss, images, labels):
    """The triplet losses' inputs: people of 3 images, as triplets for vggface."""
    labels = np.repeat(np.arange(len(labels) // 3), 3).astype(np.int32)
    if loss == 'vggface':
        return images.reshape(-1, 3, *images.shape[1:]), labels.reshape(-1, 3)
    return images, labels


def main(kind, out, loss='softmax'):
    if kind == 'mirrored':
        cpu = tf.config.list_physical_devices('CPU')[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = make_strategy(kind)
    loss_fn, modules = loss_and_modules(loss)
    global_batch = GLOBAL_BATCH if loss == 'softmax' else 12
    trainer = Trainer(strategy, lambda: dummy.build_model(image_size=IMAGE_SIZE, bottleneck_layer_size=EMBEDDING_SIZE,
                                                          weight_decay=5e-4),
                      modules, optimizer='ADAM', sync_batch_norm=True)
    trainer.build(EMBEDDING_SIZE)
    rng = np.random.default_rng(0)
    for name, variable in sorted(trainer.named_variables().items()):
        value = rng.normal(0.0, 0.1, variable.shape).astype(np.float32)
        if name.endswith('moving_variance'):
            value = np.abs(value) + 1.0
        variable.assign(value)
        if trainer.shadow_of(variable) is not None:
            trainer.shadow_of(variable).assign(value)
    images = rng.normal(size=(global_batch, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    labels = np.arange(global_batch, dtype=np.int32) % NROF_CLASSES
    if loss != 'softmax':
        images, labels = triplet_layout(loss, images, labels)
    per_replica = len(images) // strategy.num_replicas_in_sync

    def replica_slice(context):
        start = context.replica_id_in_sync_group * per_replica
        return tf.constant(images[start:start + per_replica]), tf.constant(labels[start:start + per_replica])

    inputs = strategy.experimental_distribute_values_from_function(replica_slice)
    step = trainer.train_step(loss_fn)
    results = {}
    for k in range(STEPS):
        trainer.set_learning_rate(0.05 * (k + 1))
        for key, value in step(inputs, global_batch).items():
            if np.ndim(value) == 0:
                results[f'step{k + 1}/{key}'] = np.asarray(value)
    for name, variable in trainer.named_variables().items():
        results[f'final/{name}'] = variable.numpy()
        if trainer.shadow_of(variable) is not None:
            results[f'final_ema/{name}'] = trainer.shadow_of(variable).numpy()
    results['tracing_count'] = np.asarray(step.tracing_count())
    results['replicas'] = np.asarray(strategy.num_replicas_in_sync)
    if strategy.extended.should_checkpoint:  # the chief
        np.savez(out, **results)


if __name__ == '__main__':
    main(*sys.argv[1:])
