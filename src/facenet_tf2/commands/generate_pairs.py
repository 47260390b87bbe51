"""Writes an LFW-format pairs file for any folder-per-identity dataset.

The file has the layout of LFW's pairs.txt (header `nrof_folds nrof_pairs`, then per fold
nrof_pairs same-identity pairs and nrof_pairs pairs of two identities, no identity in two folds),
so validate_on_lfw.py evaluates a model on your own data exactly as on LFW:

    python src/generate_pairs.py ~/datasets/my_faces_160 ~/datasets/my_pairs.txt --nrof_folds 10 --nrof_pairs 100
    python src/validate_on_lfw.py ~/datasets/my_faces_160 MODEL --lfw_pairs ~/datasets/my_pairs.txt

Generate the pairs from the folder you validate on (the aligned one): pairs name LFW-numbered
files (Name/Name_0001.png) by number and other files by file name.
"""
import argparse
import sys

from facenet_tf2.evaluation import lfw
from facenet_tf2.arguments import positive_int
from facenet_tf2.cli import check_output_file, run_script
from facenet_tf2.dataset import require_dataset


def main(args):
    dataset = require_dataset(args.data_dir, 'dataset folder')
    check_output_file(args.pairs_file)
    try:
        folds = lfw.generate_pairs(dataset, args.nrof_folds, args.nrof_pairs, args.seed)
    except ValueError as e:
        sys.exit(f'{args.data_dir}: {e}')
    lfw.write_pairs(args.pairs_file, folds, args.nrof_pairs)
    nrof_identities = len({pair[0] for fold in folds for pair in fold} | {pair[2] for fold in folds for pair in fold
                                                                           if len(pair) == 4})
    print(f'Wrote {args.pairs_file}: {args.nrof_folds} folds x ({args.nrof_pairs} same + {args.nrof_pairs} different) '
          f'pairs = {2 * args.nrof_folds * args.nrof_pairs} pairs over {nrof_identities} identities')


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('data_dir', type=str,
                        help='Dataset folder with one sub-folder of images per identity (the aligned faces).')
    parser.add_argument('pairs_file', type=str, help='The pairs file to write.')
    parser.add_argument('--nrof_folds', type=positive_int, default=10,
                        help='Number of cross-validation folds (LFW: 10).')
    parser.add_argument('--nrof_pairs', type=positive_int, default=300,
                        help='Same-identity pairs, and as many different-identity pairs, per fold (LFW: 300).')
    parser.add_argument('--seed', type=int, default=666, help='Random seed: the same seed gives the same file.')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
