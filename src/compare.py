"""Performs face alignment and calculates L2 distance between the embeddings of images.

As the original: `compare.py model image_files... [--image_size 160] [--margin 44]
[--gpu_memory_fraction 1.0]`. Each image is read as RGB, the first (highest-scoring) MTCNN face is
cropped with the margin and resized to image_size, standardised, embedded with the model
(anything facenet.load_model accepts, or a pretrained model name, downloaded on first use) and the
matrix of Euclidean distances printed:

    python src/compare.py 20180402-114759 data/images/Anthony_Hopkins_0001.jpg data/images/Anthony_Hopkins_0002.jpg

Added: `--standardization fixed` for models trained with fixed image standardisation, (x - 127.5) / 128,
such as 20180402-114759 (the original always prewhitened; a pretrained model name picks its own by
default); an unreadable image is reported and left out like an image without a face, and no face in
any image is a clear error, not a crash. An image given twice keeps a row of its own.
"""
import argparse
import os

import numpy as np

import facenet
from align import detect_face
from align.aligner import FACTOR, MINSIZE, THRESHOLD, align_faces
from facenet_tf2 import pretrained
from facenet_tf2.cli import UserError, check_input_file, run_script
from facenet_tf2.devices import configure_tensorflow
from facenet_tf2.images import ImageReadError, fixed_image_standardization, prewhiten, read_image

STANDARDIZATIONS = {'prewhiten': prewhiten, 'fixed': fixed_image_standardization}


def main(args):
    for image_file in args.image_files:
        check_input_file(image_file, 'image file')
    standardization = args.standardization or pretrained.standardization(args.model, 'prewhiten')
    model = facenet.load_model(args.model)
    images = load_and_align_data(args.image_files, args.image_size, args.margin, args.gpu_memory_fraction,
                                 standardization)
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


def load_and_align_data(image_paths, image_size, margin, gpu_memory_fraction, standardization='prewhiten',
                        networks=None):
    """Aligned, standardised faces [N, image_size, image_size, 3], one per image of `image_paths`.
    networks: the (pnet, rnet, onet) of detect_face.create_mtcnn, to reuse them across calls.

    As the original, images without a face (and here unreadable ones) are reported and removed
    from `image_paths`, so it lists the images the rows belong to; a path given twice keeps both
    rows. Raises UserError when none is left.
    """
    if networks is None:
        configure_tensorflow(gpu_memory_fraction=gpu_memory_fraction)
        print('Creating networks and loading parameters')
        networks = detect_face.create_mtcnn(None, None)
    pnet, rnet, onet = networks
    readable = []  # (path, image), one per entry of image_paths: a dict would merge duplicates
    for path in image_paths:
        try:
            readable.append((path, read_image(os.path.expanduser(path))))
        except ImageReadError as e:
            print(f"can't read image, remove {path}: {e.problem}")
    detections = detect_face.detect_faces([img for _, img in readable], MINSIZE, pnet, rnet, onet, THRESHOLD,
                                          FACTOR)
    kept, img_list = [], []
    for (path, img), (bounding_boxes, _) in zip(readable, detections):
        # The original's choice: the first face MTCNN returns (not the align script's most central one).
        aligned = align_faces(img, bounding_boxes[:1], margin, image_size, detect_multiple_faces=True)
        if not aligned:
            print("can't detect face, remove ", path)
            continue
        kept.append(path)
        img_list.append(STANDARDIZATIONS[standardization](aligned[0][0]))
    image_paths[:] = kept
    if not img_list:
        raise UserError('no face found in any of the images, give photos with a visible face')
    return np.stack(img_list).astype(np.float32)


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
    parser.add_argument('--standardization', choices=sorted(STANDARDIZATIONS), default=None,
                        help="Image standardisation the model was trained with: 'prewhiten' (per-image, the "
                             "original's, 20170512-110547) or 'fixed' ((x - 127.5) / 128, 20180402-114759). "
                             "Default: the pretrained model's own, else prewhiten.")
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
