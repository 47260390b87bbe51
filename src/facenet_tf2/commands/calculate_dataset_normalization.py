"""calculate_dataset_normalization.py: the per-channel pixel mean and variance of an aligned dataset,
written to <data_dir>/statistics.txt (the original's numbers for CASIA-WebFace are train_vae.py's
normalisation, facenet_tf2.generative.losses.IMG_MEAN / IMG_STDDEV):

    python src/calculate_dataset_normalization.py --data_dir ~/datasets/casia_mtcnn_64 --image_size 64

As the original: the mean over images of each image's channel means, and of each image's channel
variances (over its pixels).
"""
import argparse
import os

import numpy as np

from facenet_tf2.cli import check_input_dir, run_script
from facenet_tf2.dataset import get_dataset, get_image_paths_and_labels
from facenet_tf2.files import atomic_path
from facenet_tf2.generative.training import check_image_sizes
from facenet_tf2.images import read_image


def dataset_statistics(image_paths, batch_size=100, progress=print):
    """(mean [3], variance [3]) of the images: per-image moments over the pixels, averaged."""
    means, variances = [], []
    for start in range(0, len(image_paths), batch_size):
        batch = np.stack([read_image(p) for p in image_paths[start:start + batch_size]]).astype(np.float64)
        means.append(batch.mean(axis=(1, 2)))
        variances.append(batch.var(axis=(1, 2)))
        progress(f'Images: {min(start + batch_size, len(image_paths))}/{len(image_paths)}')
    return np.concatenate(means).mean(0), np.concatenate(variances).mean(0)


def main(args):
    data_dir = check_input_dir(args.data_dir, 'dataset folder')
    image_list, _ = get_image_paths_and_labels(get_dataset(data_dir))
    check_image_sizes(image_list, args.image_size, what='--image_size')
    mean, variance = dataset_statistics(image_list, args.batch_size)
    print(f'Final mean: {np.array_str(mean)}')
    print(f'Final variance: {np.array_str(variance)}')
    result_filename = os.path.join(data_dir, 'statistics.txt')
    print(f'Writing result to {result_filename}')
    with atomic_path(result_filename) as temporary, open(temporary, 'w') as f:
        f.write('Mean: %.5f, %.5f, %.5f\n' % tuple(mean))
        f.write('Variance: %.5f, %.5f, %.5f\n' % tuple(variance))
    return mean, variance


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data_dir', type=str, default='~/datasets/casia/casia_maxpy_mtcnnalign_182_160',
                        help='Path to the data directory containing aligned face patches.')
    parser.add_argument('--image_size', type=int, default=160, help='Image size (height, width) in pixels.')
    parser.add_argument('--batch_size', type=int, default=90, help='Number of images to process in a batch.')
    parser.add_argument('--seed', type=int, default=666, help='Random seed (the statistics do not depend on it).')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)
