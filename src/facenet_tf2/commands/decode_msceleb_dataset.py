"""decode_msceleb_dataset.py: MS-Celeb-1M TSV files (base64 images in column 6) to identity folders,
with the original's command line:

    python src/decode_msceleb_dataset.py ~/datasets/msceleb/raw TrainData_Base.tsv --size 182 --output_format png

Lines that cannot be decoded are counted and reported at the end; they never stop the run.
"""
import argparse
import os
import sys

from facenet_tf2.cli import check_input_file, check_output_dir, run_script
from facenet_tf2.msceleb import decode_tsv_files
from facenet_tf2.runfiles import store_revision_info


def main(args):
    tsv_files = [check_input_file(name, 'TSV file') for name in args.tsv_files]
    output_dir = check_output_dir(args.output_dir)
    os.makedirs(output_dir, exist_ok=True)
    store_revision_info(os.path.dirname(os.path.realpath(__file__)), output_dir, ' '.join(sys.argv))
    summary = decode_tsv_files(tsv_files, output_dir, args.size, args.output_format)
    print(summary.report())
    return summary


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('output_dir', type=str, help='Output base directory for the image dataset')
    parser.add_argument('tsv_files', type=str, nargs='+', help='Input TSV file name(s)')
    parser.add_argument('--size', type=int, help='Images are resized to the given size')
    parser.add_argument('--output_format', type=str, help='Format of the output images', default='png',
                        choices=['png', 'jpg'])
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)
