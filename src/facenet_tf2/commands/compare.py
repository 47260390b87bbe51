"""Performs face alignment and calculates L2 distance between the embeddings of images.

As the original: `compare.py model image_files... [--image_size 160] [--margin 44]
[--gpu_memory_fraction 1.0]`. Each image is read as RGB, the first (highest-scoring) MTCNN face is
cropped with the margin and resized to image_size, standardised, embedded with the model
(anything load_model accepts, or a pretrained model name, downloaded on first use) and the
matrix of Euclidean distances printed:

    python src/compare.py 20180402-114759 data/images/Anthony_Hopkins_0001.jpg data/images/Anthony_Hopkins_0002.jpg

Added: `--standardization fixed` for models trained with fixed image standardisation, (x - 127.5) / 128,
such as 20180402-114759 (the original always prewhitened; a pretrained model name picks its own by
default); an unreadable image is reported and left out like an image without a face, and no face in
any image is a clear error, not a crash. An image given twice keeps a row of its own.
"""
import argparse

import numpy as np

from facenet_tf2.model_io import load_model
from facenet_tf2 import pretrained
from facenet_tf2.arguments import add_standardization_argument, resolve_standardization
from facenet_tf2.cli import check_input_file, run_script
from facenet_tf2.faces import load_and_align_data


def main(args):
    for image_file in args.image_files:
        check_input_file(image_file, 'image file')
    model = load_model(args.model)
    images = load_and_align_data(args.image_files, args.image_size, args.margin, args.gpu_memory_fraction,
                                 resolve_standardization(args.standardization, args.model))
    emb = model(images).numpy()

    print('Images:')
    for i, image_file in enumerate(args.image_files):
        print('%1d: %s' % (i, image_file))
    print('')
    print(distance_matrix_text(emb))


def distance_matrix_text(emb):
    """The original's printout of the Euclidean distances between all embeddings."""
    lines = ['Distance matrix', '    ' + ''.join('    %1d     ' % i for i in range(len(emb)))]
    for i in range(len(emb)):
        distances = np.sqrt(np.sum(np.square(emb[i] - emb), axis=1))
        lines.append('%1d  ' % i + ''.join('  %1.4f  ' % dist for dist in distances))
    return '\n'.join(lines)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('model', type=str,
                        help='Could be either a directory containing the meta_file and ckpt_file or a model protobuf '
                             f'(.pb) file (or a SavedModel, .keras or .h5 model), or a pretrained model name '
                             f'({pretrained.names_text()}), downloaded on first use')
    parser.add_argument('image_files', type=str, nargs='+', help='Images to compare')
    parser.add_argument('--image_size', type=int, help='Image size (height, width) in pixels.', default=160)
    parser.add_argument('--margin', type=int,
                        help='Margin for the crop around the bounding box (height, width) in pixels.', default=44)
    parser.add_argument('--gpu_memory_fraction', type=float,
                        help='Upper bound on the amount of GPU memory that will be used by the process.', default=1.0)
    add_standardization_argument(parser)
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
