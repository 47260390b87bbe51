"""End-to-end LFW fidelity: this project's alignment + validate_on_lfw.py vs the original's accuracy.

Aligns ../shared/lfw/lfw-deepfunneled as `align_dataset_mtcnn.py --image_size 160 --margin 32`
(resumable: a re-run skips images already aligned), gives pair images without a detected face the
reference's fallback crop (see ../shared/reference/README.md: the central box (35, 35, 215, 215)
resized to 160 with PIL bilinear; only Marilyn_Monroe_0001 in the original), then runs
validate_on_lfw.py with its defaults on the shared 20170512-110547 frozen graph. Prints the
figures next to the original's, how close each embedding is to the original pipeline's, and exits
with status 1 if the accuracy is not within 0.001 of the original's 0.99283.

    python benchmarks/check_lfw_end_to_end.py                       # aligns into $TMPDIR first
    python benchmarks/check_lfw_end_to_end.py --aligned_dir ~/datasets/lfw/lfw_mtcnnpy_160
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / 'src'))

import lfw  # noqa: E402 pylint: disable=wrong-import-position
from facenet_tf2.commands import validate_on_lfw  # noqa: E402 pylint: disable=wrong-import-position
from facenet_tf2.commands import align_dataset_mtcnn  # noqa: E402 pylint: disable=wrong-import-position
from facenet_tf2.images import read_image  # noqa: E402 pylint: disable=wrong-import-position

SHARED = Path(os.environ.get('FACENET_SHARED', REPO_ROOT.parent / 'shared')).resolve()
ORIGINAL_ACCURACY = 0.99283
ACCURACY_TOLERANCE = 0.001
FALLBACK_BOX = (35, 35, 215, 215)
DEFAULT_ALIGNED_DIR = os.path.join(tempfile.gettempdir(), 'facenet_tf2_lfw_mtcnnpy_160_m32')


def prepare_aligned_lfw(aligned_dir, workers=1):
    """Aligns the shared LFW images into aligned_dir (resumable) and writes the reference's fallback
    crop for every pair image without a face. Returns the pair images given the fallback."""
    align_dataset_mtcnn.main(align_dataset_mtcnn.parse_arguments([
        str(SHARED / 'lfw' / 'lfw-deepfunneled'), aligned_dir, '--image_size', '160', '--margin', '32',
        '--workers', str(workers)]))
    fallbacks = []
    for pair in lfw.read_pairs(SHARED / 'lfw' / 'pairs.txt'):
        for name, number in ((pair[0], pair[1]), (pair[-2] if len(pair) == 4 else pair[0], pair[-1])):
            stem = f'{name}/{name}_{int(number):04d}'
            try:
                lfw.add_extension(os.path.join(aligned_dir, stem))
            except FileNotFoundError:
                source = SHARED / 'lfw' / 'lfw-deepfunneled' / f'{stem}.jpg'
                crop = Image.fromarray(read_image(source)).crop(FALLBACK_BOX).resize((160, 160), Image.BILINEAR)
                crop.save(os.path.join(aligned_dir, f'{stem}.png'))
                fallbacks.append(stem)
    return fallbacks


def main(args):
    fallbacks = prepare_aligned_lfw(args.aligned_dir, args.workers)
    print(f'Fallback crops written for pair images without a detected face: {fallbacks or "none"}')
    embeddings_file = os.path.join(args.aligned_dir, 'embeddings_20170512-110547.npz')
    result = validate_on_lfw.main(validate_on_lfw.parse_arguments([
        args.aligned_dir, str(SHARED / 'models' / '20170512-110547' / '20170512-110547.pb'),
        '--lfw_pairs', str(SHARED / 'lfw' / 'pairs.txt'), '--save_embeddings', embeddings_file]))

    ours = np.load(embeddings_file)
    reference = np.load(SHARED / 'reference' / 'original_embeddings_20170512-110547_lfw.npz')
    if list(ours['paths']) != list(reference['paths']):
        sys.exit('the aligned image paths differ from the reference paths')
    difference = np.abs(ours['embeddings'] - reference['embeddings']).max(axis=1)
    print(f'Embeddings vs the original pipeline (max abs difference per image, {len(difference)} images): '
          f'median {np.median(difference):.2e}, {np.mean(difference < 1e-5):.2%} within 1e-5, '
          f'{np.mean(difference < 1e-3):.2%} within 1e-3, largest {difference.max():.2e}')
    print(f'Accuracy: {result.accuracy:.5f} (original {ORIGINAL_ACCURACY:.5f}, '
          f'difference {result.accuracy - ORIGINAL_ACCURACY:+.5f}, tolerance {ACCURACY_TOLERANCE})')
    if abs(round(result.accuracy, 5) - ORIGINAL_ACCURACY) > ACCURACY_TOLERANCE:
        sys.exit(1)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--aligned_dir', default=DEFAULT_ALIGNED_DIR,
                        help='Where the aligned LFW images are (or will be) written.')
    parser.add_argument('--workers', type=int, default=1, help='Alignment processes.')
    return parser.parse_args(argv)


if __name__ == '__main__':
    main(parse_arguments(sys.argv[1:]))
