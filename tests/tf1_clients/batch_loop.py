"""An original-style client: an InteractiveSession, facenet.load_data and a sess.run batch loop
over image files (the last batch smaller), as the original validate_on_lfw.py and the
contributed tools ran them; embeddings into a preallocated array.

    python batch_loop.py v1|v2 OUT.npz BATCH_SIZE IMAGE... -- MODEL...
"""
import sys

import numpy as np

mode, out, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
import tensorflow.compat.v1 as tf  # noqa: E402
if mode == 'v1':
    tf.disable_v2_behavior()

import facenet  # noqa: E402

separator = sys.argv.index('--')
paths, models = sys.argv[4:separator], sys.argv[separator + 1:]
results = {}
for i, model in enumerate(models):
    tf.reset_default_graph()
    sess = tf.InteractiveSession()
    facenet.load_model(model)
    images_placeholder = tf.get_default_graph().get_tensor_by_name('input:0')
    embeddings = tf.get_default_graph().get_tensor_by_name('embeddings:0')
    phase_train_placeholder = tf.get_default_graph().get_tensor_by_name('phase_train:0')
    image_size = int(images_placeholder.get_shape()[1])
    emb_array = np.zeros((len(paths), int(embeddings.get_shape()[1])))
    for start in range(0, len(paths), batch_size):
        images = facenet.load_data(paths[start:start + batch_size], False, False, image_size)
        emb_array[start:start + batch_size] = sess.run(
            embeddings, feed_dict={images_placeholder: images, phase_train_placeholder: False})
    results[f'emb/{i}'] = emb_array
    sess.close()
np.savez(out, **results)
print('done', len(models))
