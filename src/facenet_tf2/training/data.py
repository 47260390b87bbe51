"""The training input: an endless, seeded, resumable stream of augmented batches.

The original dequeued `batch_size * epoch_size` indices per epoch from a shuffling
range_input_producer, so epochs run over a running sequence of shuffled passes through the data.
Here that sequence is a pure function of the seed: position k of the stream is image
perm_c[k mod N], c = k div N, perm_c a stateless shuffle seeded by (seed, c), and the image's
random crop/flip/rotation are seeded by (seed, k). Resuming at position k therefore yields exactly
the batches an uninterrupted run would have seen, with no iterator state to save; each batch
carries the stream positions of its images so the trainer knows where it is.
"""
import numpy as np
import tensorflow as tf

from facenet_tf2.pipeline import decode_and_preprocess, options_without_autotuner

_ENDLESS = 2 ** 62


def training_batches(image_paths, labels, control, image_size, batch_size, seed, start=0, unreadable=None,
                     num_parallel_calls=tf.data.AUTOTUNE):
    """tf.data batches (images [B, h, w, 3], labels [B], positions [B] int64) from stream position
    `start` on. control: one control word for all images or one per image. Unreadable files are
    skipped (recorded in `unreadable`) so a batch is always full."""
    nrof_images = len(image_paths)
    if nrof_images == 0:
        raise ValueError('no training images')
    paths = tf.constant(list(image_paths), tf.string)
    label_table = tf.constant(np.asarray(labels, np.int32))
    control_table = tf.constant(np.broadcast_to(np.asarray(control, np.int32), (nrof_images,)).copy())
    seed = int(seed) if seed is not None else 0
    first_pass, offset = divmod(int(start), nrof_images)

    def one_pass(pass_index):
        order = tf.random.experimental.stateless_shuffle(tf.range(nrof_images, dtype=tf.int64),
                                                         seed=tf.stack([tf.constant(seed, tf.int64), pass_index]))
        return tf.data.Dataset.from_tensor_slices(order)

    indices = tf.data.Dataset.range(first_pass, _ENDLESS).flat_map(one_pass).skip(offset)
    positions = tf.data.Dataset.range(int(start), _ENDLESS)

    def element(index, position):
        image_seed = tf.stack([tf.constant(seed, tf.int64), position])
        return (tf.gather(paths, index), tf.gather(label_table, index), tf.gather(control_table, index), image_seed,
                position)

    dataset = tf.data.Dataset.zip((indices, positions)).map(element)
    dataset = decode_and_preprocess(dataset, image_size, unreadable, num_parallel_calls)
    dataset = dataset.batch(batch_size, drop_remainder=True).prefetch(2)
    return dataset.with_options(options_without_autotuner())
