"""An original-style client (like the original compare.py): MTCNN in a TF1 session, then each
model loaded with facenet.load_model into a fresh graph and session, embeddings by tensor name.

    python compare_faces.py v1|v2 OUT.npz IMAGE... -- MODEL=STANDARDISATION...

v1: the standard migration, tf.disable_v2_behavior() first. v2: the TF1 API without it.
Writes the aligned crops ('crops', uint8) and, per model, its embeddings ('emb/<i>').
"""
import sys

import numpy as np
from PIL import Image

mode, out = sys.argv[1], sys.argv[2]
import tensorflow.compat.v1 as tf  # noqa: E402  (the migration's first lines)
if mode == 'v1':
    tf.disable_v2_behavior()

import align.detect_face  # noqa: E402
import facenet  # noqa: E402

separator = sys.argv.index('--')
image_files, models = sys.argv[3:separator], sys.argv[separator + 1:]

minsize, threshold, factor, margin = 20, [0.6, 0.7, 0.7], 0.709, 32
with tf.Graph().as_default():
    sess = tf.Session()
    with sess.as_default():
        pnet, rnet, onet = align.detect_face.create_mtcnn(sess, None)
crops = []
for image_file in image_files:
    img = facenet.read_image(image_file)
    bounding_boxes, _ = align.detect_face.detect_face(img, minsize, pnet, rnet, onet, threshold, factor)
    det = np.squeeze(bounding_boxes[0, 0:4])
    bb = [int(max(det[0] - margin / 2, 0)), int(max(det[1] - margin / 2, 0)),
          int(min(det[2] + margin / 2, img.shape[1])), int(min(det[3] + margin / 2, img.shape[0]))]
    crops.append(np.asarray(Image.fromarray(img[bb[1]:bb[3], bb[0]:bb[2], :]).resize((160, 160), Image.BILINEAR)))
crops = np.stack(crops)
results = {'crops': crops}
for i, spec in enumerate(models):
    model, standardisation = spec.rsplit('=', 1)
    with tf.Graph().as_default():
        with tf.Session() as sess:
            facenet.load_model(model)
            images_placeholder = tf.get_default_graph().get_tensor_by_name('input:0')
            embeddings = tf.get_default_graph().get_tensor_by_name('embeddings:0')
            phase_train_placeholder = tf.get_default_graph().get_tensor_by_name('phase_train:0')
            image_size = int(images_placeholder.get_shape()[1])  # the original validate_on_lfw.py's idiom
            side = np.stack([np.asarray(Image.fromarray(c).resize((image_size, image_size), Image.BILINEAR))
                             for c in crops])
            images = (np.stack([facenet.prewhiten(c) for c in side]) if standardisation == 'prewhiten'
                      else (side - 127.5) / 128.0)
            feed_dict = {images_placeholder: images, phase_train_placeholder: False}
            results[f'emb/{i}'] = sess.run(embeddings, feed_dict=feed_dict)
            try:  # another size than the network's must be refused, not answered with extra rows
                sess.run(embeddings, feed_dict={images_placeholder: np.zeros((1, image_size + 40, image_size + 40, 3)),
                                                phase_train_placeholder: False})
                results[f'refused/{i}'] = np.array(False)
            except (ValueError, tf.errors.InvalidArgumentError):
                results[f'refused/{i}'] = np.array(True)
            results[f'label_batch/{i}'] = np.array('label_batch' in [n.name for n in
                                                                     tf.get_default_graph().as_graph_def().node])
np.savez(out, **results)
print('done', len(models))
