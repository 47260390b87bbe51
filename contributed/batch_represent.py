"""Batch-represent face embeddings from a given data directory.

As the original contributed script (Rakshak Talwar, 2017, after OpenFace's batch-represent): the
aligned face images of a folder-per-identity directory are embedded with the model and saved in
--output_dir as gallery.npy (the identity index of each row, folders in sorted order) and
signatures.npy (one embedding per row):

    python contributed/batch_represent.py -d ~/datasets/my_faces_160 -o ~/embeddings \\
        --trained_model_dir ~/models/20170512-110547

Added: label_strings.npy (the identity folder name of each row, which identify.py enroll reads to
enrol the signatures), any model format, --is_aligned False to align photos on the fly, files written
atomically; unreadable images (and photos without a face) are reported and left out of every array,
where the original crashed. signatures.npy is float32 (the original widened it to float64).
"""
import argparse
import os
import time

import numpy as np

import facenet
from facenet_tf2.arguments import add_face_image_arguments, positive_int
from facenet_tf2.cli import run_script
from facenet_tf2.faces import embed_image_files
from facenet_tf2.files import atomic_path
from facenet_tf2.errors import PathError


def main(args):
    output_dir = os.path.expanduser(args.output_dir)
    print('Finding image paths and targets...\n')
    dataset = facenet.get_dataset(os.path.expanduser(args.data_dir))
    paths, labels = facenet.get_image_paths_and_labels(dataset)
    if not paths:
        raise PathError(args.data_dir, 'no images (expected one folder of aligned face images per person)')
    print('Loading trained model...\n')
    model = facenet.load_model(os.path.expanduser(args.trained_model_dir))
    print('Generating embeddings from images...\n')
    start_time = time.time()
    emb_array, found = embed_image_files(model, paths, model.image_size or args.image_size, args.batch_size,
                                         args.is_aligned, args.margin)
    print('Forward pass took avg of %.3f[seconds/image] for %d images\n'
          % ((time.time() - start_time) / max(len(paths), 1), len(paths)))
    labels = np.asarray(labels)[found]
    names = np.array([dataset[label].name for label in labels], dtype=str)
    print('Finally saving embeddings and gallery to: %s' % output_dir)
    for name, array in (('gallery.npy', labels), ('signatures.npy', emb_array), ('label_strings.npy', names)):
        with atomic_path(os.path.join(output_dir, name)) as temporary, open(temporary, 'wb') as f:
            np.save(f, array)
    return labels, emb_array, names


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('-d', '--data_dir', type=str, required=True,
                        help='directory of images, one folder of aligned face images per person.')
    parser.add_argument('-o', '--output_dir', type=str, required=True,
                        help='directory to write gallery.npy, signatures.npy and label_strings.npy to.')
    parser.add_argument('--trained_model_dir', type=str, required=True,
                        help='A model directory, a frozen .pb, a checkpoint folder, a SavedModel, .keras or .h5 file.')
    parser.add_argument('--batch_size', type=positive_int, help='Number of images to process in a batch.', default=50)
    add_face_image_arguments(parser, image_size_help='Image size when the model does not say (height, width) in pixels.')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
