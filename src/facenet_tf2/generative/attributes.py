"""Attribute vectors of a VAE's latent space (the original's calculate_attribute_vectors.py and
modify_attribute.py).

An attribute vector is the mean latent variable of the faces that have the attribute minus that of
the faces that have not (CelebA labels 1 / -1); adding multiples of it to a face's latent variable
and decoding adds the attribute (the original's example: index 31, `Smiling`).
"""
import math
import os
import warnings

import h5py
import numpy as np
import tensorflow as tf

from facenet_tf2.errors import UserError
from facenet_tf2.files import atomic_path
from facenet_tf2.generative import losses

# The original modify_attribute.py's faces: indices among the images without the attribute.
ORIGINAL_IMAGE_INDICES = (8, 11, 13, 18, 19, 26, 31, 39, 47, 54, 56, 57, 58, 59, 60, 73)


def read_annotations(filename):
    """(fields, {image name without extension: int array}) of a CelebA list_attr_celeba.txt: a
    count line, a line of field names, then `name v1 ... vK` lines of 1 / -1."""
    with open(filename, 'r') as f:
        lines = f.read().splitlines()
    if len(lines) < 2:
        raise UserError(f'{filename}: not a CelebA attribute file (expected a count line and a line of '
                        'attribute names); give list_attr_celeba.txt')
    fields = lines[1].split()
    attributes = {}
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        try:
            values = np.array([int(v) for v in parts[1:]], np.int64)
        except ValueError:
            values = None
        if values is None or len(values) != len(fields):
            raise UserError(f'{filename}:{number}: expected an image name and {len(fields)} values of 1 or -1, '
                            f'got {line.strip()[:60]!r}; fix the line or the file')
        attributes[parts[0].split('.')[0]] = values
    return fields, attributes


def image_attributes(image_paths, attributes, filename):
    """[N, K] attributes of the images (matched by file name without extension); an image without
    a line in the attribute file is refused."""
    rows = []
    for path in image_paths:
        key = os.path.basename(path).split('.')[0]
        if key not in attributes:
            raise UserError(f'{path}: no line for {key} in {filename}; give the attribute file of these images')
        rows.append(attributes[key])
    return np.stack(rows)


def attribute_vectors(latent_vars, attributes):
    """[K, D]: per attribute, mean latent of rows labelled 1 minus mean of rows labelled -1 (NaN
    where one side is empty, with a warning)."""
    latent_vars = np.asarray(latent_vars, np.float64)
    vectors = np.full((attributes.shape[1], latent_vars.shape[1]), np.nan, np.float32)
    empty = []
    for i in range(attributes.shape[1]):
        positive, negative = attributes[:, i] == 1, attributes[:, i] == -1
        if positive.any() and negative.any():
            vectors[i] = latent_vars[positive].mean(0) - latent_vars[negative].mean(0)
        else:
            empty.append(i)
    if empty:
        warnings.warn(f'attributes {empty} have no faces with or no faces without them: their vectors are NaN')
    return vectors


def encode_images(vae, images, batch_size, seed, mean=losses.IMG_MEAN, stddev=losses.IMG_STDDEV):
    """Latent samples [N, D] of images [N, S, S, 3] (0..255), as the original computed them: the
    encoder in training mode (BatchNorm on each batch's statistics), mean + eps * exp(lv / 2)."""
    generator = tf.random.Generator.from_seed(seed)
    size = vae.get_image_size()
    out = []
    for start in range(0, len(images), batch_size):
        batch = tf.image.resize(losses.normalize(images[start:start + batch_size], mean, stddev), (size, size))
        mu, log_variance = vae.encoder(batch, True)
        out.append(losses.sample_latent(mu, log_variance, generator.normal(tf.shape(mu))).numpy())
    return np.concatenate(out) if out else np.zeros((0, vae.latent_variable_dim), np.float32)


def decode_latents(vae, latent_vars, batch_size=128, mean=losses.IMG_MEAN, stddev=losses.IMG_STDDEV):
    """Images [N, S, S, 3] (0..255 floats, unclipped) decoded in inference mode, as modify_attribute.py."""
    out = [losses.denormalize(vae.decoder(tf.constant(latent_vars[start:start + batch_size], tf.float32), False),
                              mean, stddev).numpy()
           for start in range(0, len(latent_vars), batch_size)]
    return np.concatenate(out)


def write_attribute_file(filename, latent_vars, attributes, fields, vectors):
    with atomic_path(filename) as temporary, h5py.File(temporary, 'w') as f:
        f.create_dataset('latent_vars', data=np.asarray(latent_vars, np.float64))
        f.create_dataset('attributes', data=np.asarray(attributes, np.float64))
        f.create_dataset('fields', data=np.array([field.encode() for field in fields]))
        f.create_dataset('attribute_vectors', data=np.asarray(vectors, np.float32))


def read_attribute_file(filename):
    """(latent_vars, attributes, fields, attribute_vectors) of calculate_attribute_vectors.py's output."""
    try:
        with h5py.File(filename, 'r') as f:
            missing = [k for k in ('latent_vars', 'attributes', 'attribute_vectors') if k not in f]
            if missing:
                raise UserError(f'{filename}: no {", ".join(missing)} in the file; give the output of '
                                'calculate_attribute_vectors.py')
            fields = [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(f['fields'])] \
                if 'fields' in f else []
            return np.asarray(f['latent_vars']), np.asarray(f['attributes']), fields, np.asarray(f['attribute_vectors'])
    except OSError as e:
        raise UserError(f'{filename}: not an HDF5 attribute file ({e}); give the output of '
                        'calculate_attribute_vectors.py') from None


def sweep_latents(latent_vars, attributes, vectors, attribute_index, image_indices=ORIGINAL_IMAGE_INDICES,
                  nrof_interp_steps=10, max_factor=5.0):
    """[len(image_indices) * steps, D]: for the image_indices-th faces WITHOUT the attribute, their
    latent plus max_factor * i / steps times the attribute vector, i = 0 .. steps - 1."""
    if not np.all(np.isfinite(vectors[attribute_index])):
        raise UserError(f'attribute {attribute_index} has no vector (no faces with or without it); pick another')
    without = np.argwhere(attributes[:, attribute_index] == -1)[:, 0]
    too_big = [i for i in image_indices if i >= len(without)]
    if too_big:
        raise UserError(f'image index {too_big[0]} is past the {len(without)} faces without attribute '
                        f'{attribute_index}; give smaller --image_indices')
    factors = max_factor * np.arange(nrof_interp_steps) / nrof_interp_steps
    rows = [latent_vars[without[j]] + f * vectors[attribute_index] for j in image_indices for f in factors]
    return np.asarray(rows, np.float32)


def sweep_grid_shape(nrof_images, nrof_interp_steps):
    """The original's grid: two sweeps per row."""
    return nrof_interp_steps * 2, int(math.ceil(nrof_images / 2))
