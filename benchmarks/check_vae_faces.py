"""Checks a trained DFC-VAE on real faces (run by hand; see README "Variational autoencoder").

1. Identity: held-out aligned faces are reconstructed (encoder mean, decoder in inference mode) by
   each VAE given; a facenet model embeds inputs and reconstructions (64 px resized to 160,
   prewhitened). Per face: is the reconstruction closer to its own input than to every held-out
   face of other people (top-1), and than to the median one? PERCEPTUAL against PLAIN at equal
   steps is the DFC-VAE paper's claim.
2. Smile (with --attributes_h5 and --celeba_dir): a logistic-regression smile classifier trained on
   the facenet embeddings of the labelled CelebA faces (5-fold accuracy reported) scores the images
   of the attribute sweep; the mean P(smiling) per sweep step should rise.

    python benchmarks/check_vae_faces.py --vae PERCEPTUAL=~/vae/<a> --vae PLAIN=~/vae/<b> \
        --heldout_dir heldout_64 --model ../shared/models/20170512-110547/20170512-110547.pb \
        --attributes_h5 attributes.h5 --celeba_dir celeba_64/celeba --sweep_vae PERCEPTUAL
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'src'))

from facenet_tf2.dataset import get_dataset, get_image_paths  # noqa: E402
from facenet_tf2.generative import attributes as attr  # noqa: E402
from facenet_tf2.generative import losses  # noqa: E402
from facenet_tf2.generative.checkpoints import load_vae  # noqa: E402
from facenet_tf2.images import prewhiten, read_image  # noqa: E402
from facenet_tf2.model_io import load_model  # noqa: E402


def embed(model, images):
    """facenet embeddings of 0..255 images of any size (resized to 160, prewhitened)."""
    out = []
    for start in range(0, len(images), 100):
        batch = tf.image.resize(np.clip(images[start:start + 100], 0, 255), (160, 160)).numpy()
        out.append(model(np.stack([prewhiten(x) for x in batch]).astype(np.float32)).numpy())
    return np.concatenate(out)


def reconstruct(vae, images):
    size = vae.get_image_size()
    out = []
    for start in range(0, len(images), 128):
        norm = tf.image.resize(losses.normalize(images[start:start + 128]), (size, size))
        mean, _ = vae.encoder(norm, True)
        out.append(losses.denormalize(vae.decoder(mean, False)).numpy())
    return np.concatenate(out)


def identity_scores(input_embeddings, rec_embeddings, labels):
    d = np.linalg.norm(rec_embeddings[:, None, :] - input_embeddings[None, :, :], axis=2)
    own = np.diag(d)
    other = labels[None, :] != labels[:, None]
    top1 = np.mean([own[i] < d[i, other[i]].min() for i in range(len(own))])
    median = np.mean([own[i] < np.median(d[i, other[i]]) for i in range(len(own))])
    farther = np.mean([np.mean(d[i, other[i]] > own[i]) for i in range(len(own))])
    return {'top1': top1, 'below_median': median, 'others_farther': farther,
            'mean_own': own.mean(), 'mean_other': d[other].mean()}


def main(args):
    model = load_model(args.model)
    dataset = get_dataset(args.heldout_dir)
    paths = [p for c in dataset for p in c.image_paths]
    labels = np.array([i for i, c in enumerate(dataset) for _ in c.image_paths])
    images = np.stack([read_image(p) for p in paths]).astype(np.float32)
    inputs = embed(model, images)
    print(f'{len(paths)} held-out faces of {len(dataset)} people')
    vaes = {}
    for spec in args.vae:
        name, folder = spec.split('=', 1)
        vaes[name] = load_vae(args.vae_def, args.latent_var_size, os.path.expanduser(folder))
        scores = identity_scores(inputs, embed(model, reconstruct(vaes[name], images)), labels)
        print(f'{name}: reconstruction nearest its own input (top-1 among {len(paths)}): {scores["top1"]:.3f}; '
              f'closer than the median other person: {scores["below_median"]:.3f}; other people farther: '
              f'{scores["others_farther"]:.3f}; mean distance own {scores["mean_own"]:.3f} / other '
              f'{scores["mean_other"]:.3f}')
    if args.attributes_h5:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import cross_val_score
        latent_vars, attributes, fields, vectors = attr.read_attribute_file(args.attributes_h5)
        index = fields.index('Smiling')
        celeba = get_image_paths(args.celeba_dir)
        fields_, table = attr.read_annotations(args.annotations)
        smiling = attr.image_attributes(celeba, table, args.annotations)[:, index] == 1
        faces = embed(model, np.stack([read_image(p) for p in celeba]).astype(np.float32))
        classifier = LogisticRegression(C=1.0, max_iter=2000)
        accuracy = cross_val_score(classifier, faces, smiling, cv=5).mean()
        classifier.fit(faces, smiling)
        sweep = attr.sweep_latents(latent_vars, attributes, vectors, index, attr.ORIGINAL_IMAGE_INDICES, 10, 5.0)
        decoded = attr.decode_latents(vaes[args.sweep_vae], sweep)
        p = classifier.predict_proba(embed(model, decoded))[:, 1].reshape(len(attr.ORIGINAL_IMAGE_INDICES), 10)
        print(f'smile classifier on facenet embeddings of {len(celeba)} CelebA faces: 5-fold accuracy {accuracy:.3f}')
        print('mean P(smiling) per sweep step (0 .. 4.5 x the Smiling vector): '
              + ' '.join(f'{v:.2f}' for v in p.mean(0)))
        rising = np.mean([np.corrcoef(np.arange(10), row)[0, 1] > 0 for row in p])
        print(f'faces whose P(smiling) rises along the sweep (positive correlation with the step): {rising:.3f}')
        projection = (latent_vars @ vectors[index])
        print(f'latent projection on the Smiling vector: smiling {projection[attributes[:, index] == 1].mean():.2f}, '
              f'not {projection[attributes[:, index] == -1].mean():.2f}')


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--vae', action='append', required=True, help='NAME=checkpoint or model folder')
    parser.add_argument('--vae_def', default='dfc_vae')
    parser.add_argument('--latent_var_size', type=int, default=100)
    parser.add_argument('--heldout_dir', required=True)
    parser.add_argument('--model', required=True, help='facenet model for the embeddings')
    parser.add_argument('--attributes_h5')
    parser.add_argument('--celeba_dir')
    parser.add_argument('--annotations', default=os.path.join(os.environ.get('FACENET_SHARED', '../shared'),
                                                               'celeba_attributes', 'list_attr_celeba.txt'))
    parser.add_argument('--sweep_vae', default='PERCEPTUAL')
    return parser.parse_args(argv)


if __name__ == '__main__':
    main(parse_arguments(sys.argv[1:]))
