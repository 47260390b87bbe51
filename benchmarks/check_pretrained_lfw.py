"""LFW accuracy of each pretrained model name with this port, by the README's commands.

Aligns the unaligned LFW images (as `align_dataset_mtcnn.py RAW ALIGNED --image_size 160 --margin 32`,
resumable), then runs validate_on_lfw.py on data/pairs.txt for each named model (downloaded on first
use) with the protocol its published figure used: the 2018 models with `--distance_metric 1
--use_flipped_images --subtract_mean --use_fixed_image_standardization`, 20170512-110547 with the
defaults. Pairs whose image has no detected face are skipped (validate_on_lfw.py's default; one
pair on LFW). Prints each figure next to the README's (measured with this script on the shared
deep-funneled LFW) and the published one, and exits with status 1 if an accuracy is more than
--tolerance from the README's.

    python benchmarks/check_pretrained_lfw.py --lfw_raw ~/datasets/lfw/raw --aligned_dir ~/datasets/lfw/lfw_mtcnnpy_160
    python benchmarks/check_pretrained_lfw.py --models 20180402-114759     # ../shared/lfw/lfw-deepfunneled
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / 'src'))

from facenet_tf2.commands import validate_on_lfw  # noqa: E402 pylint: disable=wrong-import-position
from facenet_tf2.commands import align_dataset_mtcnn  # noqa: E402 pylint: disable=wrong-import-position
from facenet_tf2.pretrained import PRETRAINED_MODELS  # noqa: E402 pylint: disable=wrong-import-position

SHARED = Path(os.environ.get('FACENET_SHARED', REPO_ROOT.parent / 'shared')).resolve()
# The README's figures: this script on ../shared/lfw/lfw-deepfunneled, 5,999 of the 6,000 pairs.
MEASURED_ACCURACY = {'20180402-114759': 0.99383, '20180408-102900': 0.99017, '20170512-110547': 0.99283}
PROTOCOL_2018 = ['--distance_metric', '1', '--use_flipped_images', '--subtract_mean',
                 '--use_fixed_image_standardization']


def validate_arguments(name, aligned_dir, pairs):
    protocol = PROTOCOL_2018 if name.startswith('2018') else []
    return [aligned_dir, name, '--lfw_pairs', pairs, *protocol]


def main(args):
    if not args.skip_align:
        align_dataset_mtcnn.main(align_dataset_mtcnn.parse_arguments(
            [args.lfw_raw, args.aligned_dir, '--image_size', '160', '--margin', '32', '--workers', str(args.workers)]))
    rows, failed = [], False
    for name in args.models:
        command = validate_arguments(name, args.aligned_dir, args.lfw_pairs)
        print(f'\n== python src/validate_on_lfw.py {" ".join(command)}', flush=True)
        result = validate_on_lfw.main(validate_on_lfw.parse_arguments(command))
        rows.append((name, result))
        failed |= abs(result.accuracy - MEASURED_ACCURACY[name]) > args.tolerance
    print('\n| model | accuracy | validation rate @ FAR | AUC | EER | README | published |')
    print('|---|---|---|---|---|---|---|')
    for name, result in rows:
        print(f'| {name} | {result.accuracy:.5f}+-{result.accuracy_std:.5f} | {result.val:.5f}+-{result.val_std:.5f} '
              f'@ {result.far:.5f} | {result.auc:.3f} | {result.eer:.3f} | {MEASURED_ACCURACY[name]} | '
              f'{PRETRAINED_MODELS[name].lfw_accuracy} |')
    return 1 if failed else 0


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--lfw_raw', default=str(SHARED / 'lfw' / 'lfw-deepfunneled'),
                        help='Unaligned LFW, one folder per person (default: the shared folder\'s).')
    parser.add_argument('--aligned_dir', default=os.path.join(tempfile.gettempdir(), 'facenet_tf2_lfw_mtcnnpy_160'),
                        help='Where the aligned faces go (kept: a re-run skips the aligning).')
    parser.add_argument('--skip_align', action='store_true', help='aligned_dir is complete already.')
    parser.add_argument('--lfw_pairs', default=str(REPO_ROOT / 'data' / 'pairs.txt'))
    parser.add_argument('--models', nargs='+', default=list(PRETRAINED_MODELS), choices=list(PRETRAINED_MODELS))
    parser.add_argument('--workers', type=int, default=1)
    parser.add_argument('--tolerance', type=float, default=0.0005,
                        help='How far from the README\'s accuracy still passes (other LFW images or '
                             'alignment settings give other figures).')
    return parser.parse_args(argv)


if __name__ == '__main__':
    sys.exit(main(parse_arguments(sys.argv[1:])))
