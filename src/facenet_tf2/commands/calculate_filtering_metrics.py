"""Calculate filtering metrics for a dataset and store them in an HDF5 file.

Every image of an aligned folder-per-identity dataset is embedded with the model (anything
load_model accepts) and its distance to its class centre (the mean embedding of the
class) is written, as the original did, to an HDF5 file with `class_names`, `image_list`,
`label_list` and `distance_to_center`. train_softmax.py --filter_filename reads it to leave out
the images farthest from their class centre (--filter_percentile) and the classes left with too
few images (--filter_min_nrof_images_per_class).

    python src/calculate_filtering_metrics.py ~/datasets/casia/casia_maxpy_mtcnnalign_182_160 \\
        ~/models/20170512-110547 casia_filtering.h5 --image_size 160 --batch_size 90

Unlike the original: the file is written atomically and also under Python 3 (strings as UTF-8);
the embeddings are saved in chunks beside it (FILE.parts/) as they are made, so a killed run
continues where it stopped; an unreadable image is reported and gets a NaN distance instead of
stopping the run; any batch size works; --use_fixed_image_standardization serves models trained
with it (20180402-114759).
"""
import argparse
import os
import shutil

import numpy as np

from facenet_tf2.dataset import get_image_paths_and_labels
from facenet_tf2.model_io import load_model
from facenet_tf2.arguments import positive_int
from facenet_tf2.cli import check_output_file, run_script
from facenet_tf2.errors import UserError
from facenet_tf2.dataset import require_dataset
from facenet_tf2.embeddings import embed_images_resumably
from facenet_tf2.model_io import find_model
from facenet_tf2.pipeline import UnreadableImages
from facenet_tf2.training.filtering import distance_to_center, write_filtering_metrics


def main(args):
    dataset = require_dataset(args.dataset_dir)
    image_list, label_list = get_image_paths_and_labels(dataset)
    find_model(args.model_file)
    output = check_output_file(args.data_file_name)
    folder = os.path.dirname(os.path.abspath(output))
    if os.path.isdir(folder) and not os.access(folder, os.W_OK):
        raise UserError(f'{args.data_file_name}: cannot write the HDF5 file there, give a file name in a '
                        'writable folder')
    print(f'Number of classes: {len(dataset)}')
    print(f'Number of images: {len(image_list)}')

    model = load_model(os.path.expanduser(args.model_file))
    if model.image_size is not None and model.image_size != args.image_size:
        raise UserError(f'{args.model_file}: the model takes {model.image_size}x{model.image_size} images, '
                        f'not --image_size {args.image_size}')
    progress_dir = output + '.parts'
    print(f'Embeddings are kept in {progress_dir} as they are made: if the run stops, the same command continues')
    unreadable = UnreadableImages()
    embedded = embed_images_resumably(model, image_list, args.image_size, args.batch_size, progress_dir,
                                      use_fixed_image_standardization=args.use_fixed_image_standardization,
                                      unreadable=unreadable)
    if unreadable:
        print(unreadable.summary())
    distances = distance_to_center(embedded.embeddings, label_list, embedded.found)
    print(f'Embedded {embedded.nrof_embedded} images in {embedded.seconds:.1f} seconds; distance to class centre: '
          f'median {np.nanmedian(distances):.4f}, max {np.nanmax(distances):.4f}')

    print(f'Writing filtering data to {args.data_file_name}')
    write_filtering_metrics(output, dataset, image_list, label_list, distances)
    shutil.rmtree(progress_dir)
    return distances


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('dataset_dir', type=str,
                        help='Path to the directory containing aligned dataset.')
    parser.add_argument('model_file', type=str,
                        help='The model to use for feature extraction: a frozen .pb file (as the original), a '
                             'checkpoint or SavedModel directory, or a .keras / .h5 file.')
    parser.add_argument('data_file_name', type=str,
                        help='The name of the file to store filtering data in.')
    parser.add_argument('--image_size', type=int,
                        help='Image size.', default=160)
    parser.add_argument('--batch_size', type=positive_int,
                        help='Number of images to process in a batch.', default=90)
    parser.add_argument('--use_fixed_image_standardization', action='store_true',
                        help='Performs fixed standardization of images (for models trained with it).')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
