"""Performs face alignment and stores face thumbnails in the output directory.

The original's script, same arguments and outputs; see facenet_tf2.detection.aligner for what it does and what
was added. The input has one folder of images per person (IN/Name/Name_0001.jpg).

    python src/align/align_dataset_mtcnn.py ~/datasets/lfw/raw ~/datasets/lfw/lfw_mtcnnpy_160 \
        --image_size 160 --margin 32 --workers 2
"""
import argparse
import os
import sys

from facenet_tf2.detection.aligner import align_dataset
from facenet_tf2.arguments import str2bool
from facenet_tf2.cli import check_input_dir, check_output_dir, run_script
from facenet_tf2.dataset import require_dataset
from facenet_tf2.runfiles import store_revision_info


def main(args):
    require_dataset(args.input_dir, 'input folder')
    if args.mtcnn_model_dir:
        check_input_dir(args.mtcnn_model_dir, 'folder of det1.npy, det2.npy, det3.npy')
    output_dir = check_output_dir(args.output_dir)
    os.makedirs(output_dir, exist_ok=True)
    # Store some git revision info in a text file in the output directory, as the original.
    src_path = os.path.dirname(os.path.realpath(__file__))
    store_revision_info(src_path, output_dir, ' '.join(sys.argv))
    print('Creating networks and loading parameters')
    summary = align_dataset(args.input_dir, output_dir, image_size=args.image_size, margin=args.margin,
                            random_order=args.random_order, detect_multiple_faces=args.detect_multiple_faces,
                            gpu_memory_fraction=args.gpu_memory_fraction, workers=args.workers,
                            model_path=args.mtcnn_model_dir, retry_failed=args.retry_failed)
    print('\n'.join(summary.lines()))
    return summary


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('input_dir', type=str, help='Directory with unaligned images.')
    parser.add_argument('output_dir', type=str, help='Directory with aligned face thumbnails.')
    parser.add_argument('--image_size', type=int,
                        help='Image size (height, width) in pixels.', default=182)
    parser.add_argument('--margin', type=int,
                        help='Margin for the crop around the bounding box (height, width) in pixels.', default=44)
    parser.add_argument('--random_order',
                        help='Shuffles the order of images to enable alignment using multiple processes.',
                        action='store_true')
    parser.add_argument('--gpu_memory_fraction', type=float,
                        help='Upper bound on the amount of GPU memory that will be used by the process '
                             '(TF2: below 1.0, memory is allocated as needed).', default=1.0)
    parser.add_argument('--detect_multiple_faces', type=str2bool, nargs='?', const=True,
                        help='Detect and align multiple faces per image (True/False).', default=False)
    parser.add_argument('--workers', type=int, default=1,
                        help='Number of processes to split the images over (each image is done once).')
    parser.add_argument('--mtcnn_model_dir', type=str, default=None,
                        help='Folder with the original det1.npy, det2.npy, det3.npy '
                             '(default: the weights shipped by the mtcnn package).')
    parser.add_argument('--retry_failed', action='store_true',
                        help='Also retry the images that earlier runs found no face in (images that could not be '
                             'read are always retried).')
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error('--workers must be at least 1')
    return args


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
