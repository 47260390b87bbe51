"""An original-style client of a model folder: get_model_filenames, import_meta_graph, restore,
then embeddings by tensor name; also the original load_model with input_map (phase_train
mapped to a constant), as client code passed it.

    python restore_metagraph.py v1|v2 OUT.npz IMAGES.npy MODEL_DIR
"""
import os
import sys

import numpy as np

mode, out, images_file, model_dir = sys.argv[1:5]
import tensorflow.compat.v1 as tf  # noqa: E402
if mode == 'v1':
    tf.disable_v2_behavior()

import facenet  # noqa: E402

images = np.load(images_file)
results = {}
with tf.Graph().as_default():
    with tf.Session() as sess:
        meta_file, ckpt_file = facenet.get_model_filenames(model_dir)
        saver = tf.train.import_meta_graph(os.path.join(model_dir, meta_file))
        saver.restore(tf.get_default_session(), os.path.join(model_dir, ckpt_file))
        results['restored'] = sess.run('embeddings:0', feed_dict={'input:0': images, 'phase_train:0': False})
with tf.Graph().as_default():
    with tf.Session() as sess:
        facenet.load_model(model_dir, input_map={'phase_train:0': tf.constant(False)})
        results['input_map'] = sess.run('embeddings:0', feed_dict={'input:0': images[:1]})
np.savez(out, **results)
print('done')
