"""calculate_attribute_vectors.py: encodes aligned CelebA faces with a trained VAE and writes
`latent_vars`, `attributes`, `fields` and `attribute_vectors` (mean latent of the faces with an
attribute minus without) to HDF5, with the original's command line:

    python src/generative/calculate_attribute_vectors.py generative.models.dfc_vae ~/vae/<subdir> \
        ~/datasets/celeba/img_celeba_mtcnn_64 ~/datasets/celeba/list_attr_celeba.txt attribute_vectors.h5
"""
import argparse
import time

import numpy as np

from facenet_tf2.cli import check_input_dir, check_input_file, check_output_file, run_script
from facenet_tf2.dataset import get_image_paths
from facenet_tf2.errors import UserError
from facenet_tf2.generative import attributes as attr
from facenet_tf2.generative.checkpoints import load_vae
from facenet_tf2.generative.training import check_image_sizes
from facenet_tf2.images import read_image


def main(args):
    annotations = check_input_file(args.annotations_filename, 'attribute file')
    data_dir = check_input_dir(args.data_dir, 'folder of aligned faces')
    output = check_output_file(args.output_filename)
    fields, attribs_dict = attr.read_annotations(annotations)
    image_list = get_image_paths(data_dir)
    if not image_list:
        raise UserError(f'{args.data_dir}: no images in the folder; give the folder of aligned CelebA faces')
    attributes = attr.image_attributes(image_list, attribs_dict, args.annotations_filename)
    check_image_sizes(image_list, args.image_size, what='--image_size')
    print(f'Restoring VAE checkpoint: {args.vae_checkpoint}')
    vae = load_vae(args.vae_def, args.latent_var_size, args.vae_checkpoint)

    latent_vars = []
    nrof_batches = (len(image_list) + args.batch_size - 1) // args.batch_size
    for i in range(nrof_batches):
        start_time = time.time()
        paths = image_list[i * args.batch_size:(i + 1) * args.batch_size]
        images = np.stack([read_image(p) for p in paths]).astype(np.float32)
        latent_vars.append(attr.encode_images(vae, images, args.batch_size, args.seed + i))
        print('Batch %d/%d: %.3f seconds' % (i + 1, nrof_batches, time.time() - start_time))
    latent_vars = np.concatenate(latent_vars)
    vectors = attr.attribute_vectors(latent_vars, attributes)
    print(f'Writing attribute vectors, latent variables and attributes to {args.output_filename}')
    attr.write_attribute_file(output, latent_vars, attributes, fields, vectors)
    return output


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('vae_def', type=str,
                        help='Model definition for the variational autoencoder (generative.models.dfc_vae).')
    parser.add_argument('vae_checkpoint', type=str,
                        help='Checkpoint of a trained VAE: a prefix (model-<subdir>.ckpt-<step>, or the original\'s '
                             'model.ckpt-<step>) or the model folder (its latest checkpoint).')
    parser.add_argument('data_dir', type=str, help='Path to the directory containing aligned face patches for CelebA.')
    parser.add_argument('annotations_filename', type=str, help='Path to the annotations file (list_attr_celeba.txt).')
    parser.add_argument('output_filename', type=str, help='Filename to use for the file containing the attribute vectors.')
    parser.add_argument('--batch_size', type=int, default=128, help='Number of images to process in a batch.')
    parser.add_argument('--image_size', type=int, default=64,
                        help='Image size (height, width) in pixels of the aligned faces; others are refused.')
    parser.add_argument('--latent_var_size', type=int, default=100, help='Dimensionality of the latent variable.')
    parser.add_argument('--seed', type=int, default=666, help='Random seed.')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)
