"""The tf.data input pipeline: per-image control flags as in the original's queue pipeline.

Each image carries an int control word; its bits select what happens to it, in this order:
rotate, crop, flip, standardise, flip. Decoding runs `images.read_image` (Pillow) in parallel
threads, so the pipeline sees exactly the pixels every other tool sees and reads PGM as well;
everything after decoding is TensorFlow ops. Random choices use stateless ops seeded per image,
so a seeded pipeline gives the same batches on every run, however many threads decode.
"""
import logging
import math
import threading

import numpy as np
import tensorflow as tf

from facenet_tf2.images import read_image
from facenet_tf2.errors import ImageReadError

log = logging.getLogger(__name__)

# The control bits of the original (1: random rotate, 2: random crop, 4: random flip,
# 8: fixed image standardisation instead of per-image, 16: flip).
RANDOM_ROTATE = 1
RANDOM_CROP = 2
RANDOM_FLIP = 4
FIXED_STANDARDIZATION = 8
FLIP = 16

MAX_ROTATION_DEGREES = 10.0


def options_without_autotuner():
    """AUTOTUNE parallelism stays at min(16, cores) and prefetch at its own on-demand buffer, with
    no autotuner thread: that thread sleeps ever longer between optimisation rounds and the
    iterator's destruction waits for it, 3 to 35 s at the end of an LFW evaluation, for no gain
    while decoding is many times faster than the model."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def get_control_flag(control, field):
    """True where the bit `field` is set in `control` (works on tensors and ints)."""
    return tf.equal(tf.math.floormod(tf.math.floordiv(control, field), 2), 1)


class UnreadableImages:
    """Collects images the pipeline skipped, with the reason, and warns once per file."""

    def __init__(self):
        self._lock = threading.Lock()
        self.failures = []

    def add(self, path, problem):
        with self._lock:
            self.failures.append((path, problem))
        log.warning('skipping unreadable image %s: %s', path, problem)

    def __len__(self):
        return len(self.failures)

    def summary(self):
        lines = [f'{len(self.failures)} unreadable image(s) skipped']
        lines += [f'  {path}: {problem}' for path, problem in self.failures]
        return '\n'.join(lines)


def _image_size_tuple(image_size):
    if isinstance(image_size, int):
        return image_size, image_size
    height, width = image_size
    return int(height), int(width)


def decode_image_file(path, unreadable=None):
    """Reads one image file (string tensor) into uint8 [H, W, 3] with read_image.

    Returns (image, ok). An unreadable file raises an error naming it, or, when `unreadable` is
    an UnreadableImages, is recorded there and comes back with ok=False (to be filtered out).
    """

    def read(path_bytes):
        path_str = path_bytes.decode('utf-8', errors='surrogateescape')
        try:
            return read_image(path_str), True
        except ImageReadError as e:
            if unreadable is None:
                raise
            unreadable.add(path_str, e.problem)
            return np.zeros((1, 1, 3), np.uint8), False

    image, ok = tf.numpy_function(read, [path], [tf.uint8, tf.bool], stateful=False)
    image.set_shape([None, None, 3])
    ok.set_shape([])
    return image, ok


def random_rotate_image(image, seed, max_degrees=MAX_ROTATION_DEGREES):
    """Rotates about the centre by a uniform angle in [-max_degrees, max_degrees], black fill.

    The original used SciPy's old misc.imrotate (bicubic); this is TensorFlow's bilinear projective
    transform, so it needs neither SciPy's removed misc module nor TensorFlow Addons and runs in the graph.
    """
    angle = tf.random.stateless_uniform([], seed, -max_degrees, max_degrees) * (math.pi / 180.0)
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
    y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
    transform = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0])[tf.newaxis]
    rotated = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(image[tf.newaxis], tf.float32), transforms=transform, output_shape=shape[:2],
        fill_value=0.0, interpolation='BILINEAR', fill_mode='CONSTANT')[0]
    return tf.cast(tf.clip_by_value(tf.round(rotated), 0.0, 255.0), image.dtype)


def preprocess_image(image, control, image_size, seed):
    """Applies the control bits to one uint8 image; returns float32 [height, width, 3].

    `seed` is a [2] int tensor; each random step derives its own seed from it.
    """
    height, width = _image_size_tuple(image_size)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=3)
    image = tf.cond(get_control_flag(control, RANDOM_ROTATE),
                    lambda: random_rotate_image(image, seeds[0]), lambda: image)
    image = tf.cond(get_control_flag(control, RANDOM_CROP),
                    lambda: tf.image.stateless_random_crop(image, (height, width, 3), seeds[1]),
                    lambda: tf.image.resize_with_crop_or_pad(image, height, width))
    image = tf.cond(get_control_flag(control, RANDOM_FLIP),
                    lambda: tf.image.stateless_random_flip_left_right(image, seeds[2]), lambda: image)
    image = tf.cond(get_control_flag(control, FIXED_STANDARDIZATION),
                    lambda: (tf.cast(image, tf.float32) - 127.5) / 128.0,
                    lambda: tf.image.per_image_standardization(image))
    image = tf.cond(get_control_flag(control, FLIP), lambda: tf.image.flip_left_right(image), lambda: image)
    image.set_shape((height, width, 3))
    return image


def create_input_pipeline(image_paths, labels, control, image_size, batch_size, *, seed=None, shuffle=False,
                          unreadable=None, num_parallel_calls=tf.data.AUTOTUNE, drop_remainder=False):
    """A tf.data.Dataset of (images [B, h, w, 3] float32, labels [B]) batches.

    image_paths, labels: one entry per image. control: one int per image, or one int for all
    (a sum of RANDOM_ROTATE, RANDOM_CROP, RANDOM_FLIP, FIXED_STANDARDIZATION, FLIP). image_size:
    int or (height, width). seed: makes shuffling and every random augmentation repeatable.
    unreadable: an UnreadableImages to skip (and record) files that cannot be read; by default an
    unreadable file stops iteration with an error naming it.
    """
    nrof_images = len(image_paths)
    if len(labels) != nrof_images:
        raise ValueError(f'{nrof_images} image paths but {len(labels)} labels')
    control = np.broadcast_to(np.asarray(control, np.int32), (nrof_images,))
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(list(image_paths), tf.string), tf.constant(np.asarray(labels)), tf.constant(control)))
    if shuffle:
        dataset = dataset.shuffle(max(nrof_images, 1), seed=seed, reshuffle_each_iteration=True)
    image_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    dataset = tf.data.Dataset.zip((dataset, image_seeds)).map(lambda element, image_seed: (*element, image_seed))
    dataset = decode_and_preprocess(dataset, image_size, unreadable, num_parallel_calls)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
    return dataset.with_options(options_without_autotuner())


def decode_and_preprocess(dataset, image_size, unreadable=None, num_parallel_calls=tf.data.AUTOTUNE):
    """Maps elements (path, label, control, seed [2], *extra) to (image, label, *extra): decoded in
    parallel, unreadable files skipped into `unreadable` (if given), control bits applied."""

    def decode(path, label, image_control, image_seed, *extra):
        image, ok = decode_image_file(path, unreadable)
        return image, label, image_control, image_seed, ok, *extra

    def augment(image, label, image_control, image_seed, ok, *extra):
        return preprocess_image(image, image_control, image_size, image_seed), label, *extra

    dataset = dataset.map(decode, num_parallel_calls=num_parallel_calls)
    if unreadable is not None:
        dataset = dataset.filter(lambda image, label, image_control, image_seed, ok, *extra: ok)
    return dataset.map(augment, num_parallel_calls=num_parallel_calls)
