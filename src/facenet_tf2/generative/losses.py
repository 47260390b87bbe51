"""The VAE's normalisation and losses, as the original's train_vae.py computed them.

Images are normalised per channel by the statistics of the original's training set (CASIA-WebFace
aligned by MTCNN, from calculate_dataset_normalization.py): (x - IMG_MEAN) / IMG_STDDEV. The losses
are sums over the whole batch, not means (the original's reduce_mean wraps a reduce_sum that
already summed everything), so their size grows with the batch size and `--beta` was tuned for 128.
"""
import numpy as np
import tensorflow as tf

IMG_MEAN = np.array([134.10714722, 102.52040863, 87.15436554], np.float32)
IMG_STDDEV = np.sqrt(np.array([3941.30175781, 2856.94287109, 2519.35791016], np.float32))


def normalize(images, mean=IMG_MEAN, stddev=IMG_STDDEV):
    return (tf.cast(images, tf.float32) - mean) / stddev


def denormalize(images_norm, mean=IMG_MEAN, stddev=IMG_STDDEV):
    return images_norm * stddev + mean


def kl_divergence_loss(mean, log_variance):
    """KL(N(mean, exp(log_variance)) || N(0, I)) per example: 0.5 * sum(exp(lv) + mean^2 - 1 - lv)."""
    return 0.5 * tf.reduce_sum(tf.exp(log_variance) + tf.square(mean) - 1.0 - log_variance, axis=1)


def sample_latent(mean, log_variance, epsilon):
    """The reparameterised sample mean + epsilon * exp(log_variance / 2)."""
    return mean + epsilon * tf.exp(log_variance / 2)


def plain_reconstruction_loss(images, reconstructed):
    """PLAIN: the summed squared pixel error (0..255 scale) over the batch."""
    return tf.reduce_sum(tf.square(tf.cast(images, tf.float32) - reconstructed))


def perceptual_reconstruction_loss(image_features, reconstructed_features):
    """PERCEPTUAL: per feature map, the summed squared error over the batch; the maps' terms summed.
    Returns (total, [term per feature])."""
    terms = [tf.reduce_sum(tf.square(a - b)) for a, b in zip(image_features, reconstructed_features)]
    return tf.add_n(terms), terms
