"""Speed of a whole validate_on_lfw.py run on LFW, split between input (loading, decoding) and the model.

Contenders, run interleaved (A B C D, A B C D, ...) so that load from other jobs on the machine
hits them alike; medians are printed:
  validate  validate_on_lfw.main with its defaults on the 6,000 pairs (12,000 pair images, 7,701
            distinct files, each embedded once): wall time, and within it the embedding phase and
            the time the model spent computing.
  model     the model alone on an in-memory batch of --lfw_batch_size aligned images: its own
            batch throughput, what the embedding phase should reach.
  input     the input pipeline alone (parallel decode + standardisation of the 7,701 files), no model.
  serial    the original's way without its queue: facenet.load_data of each batch, then the model,
            never overlapping, for all 12,000 pair images (what the older validate_on_lfw did).

    python benchmarks/bench_validate_on_lfw.py                    # aligns LFW into $TMPDIR first
    python benchmarks/bench_validate_on_lfw.py --aligned_dir ~/datasets/lfw/lfw_mtcnnpy_160
    python benchmarks/bench_validate_on_lfw.py --repeats 3 --contenders validate model input
    python benchmarks/bench_validate_on_lfw.py --nrof_pairs 600   # a quick look on fewer pairs
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_lfw_end_to_end import DEFAULT_ALIGNED_DIR, SHARED, prepare_aligned_lfw  # noqa: E402

import facenet  # noqa: E402 pylint: disable=wrong-import-position
import lfw  # noqa: E402 pylint: disable=wrong-import-position
from facenet_tf2.commands import validate_on_lfw  # noqa: E402 pylint: disable=wrong-import-position

MODEL = SHARED / 'models' / '20170512-110547' / '20170512-110547.pb'


def pairs_subset(nrof_pairs, folder):
    """pairs.txt itself, or nrof_pairs of its pairs evenly spaced (same and different) in two folds."""
    if nrof_pairs is None:
        return str(SHARED / 'lfw' / 'pairs.txt')
    pairs = lfw.read_pairs(SHARED / 'lfw' / 'pairs.txt')
    chosen = [list(pair) for pair in pairs[::max(1, len(pairs) // nrof_pairs)][:nrof_pairs]]
    path = os.path.join(folder, f'pairs_{nrof_pairs}.txt')
    lfw.write_pairs(path, [chosen[:len(chosen) // 2], chosen[len(chosen) // 2:]], len(chosen) // 4)
    return path


def run_validate(aligned_dir, pairs_file, batch_size, folder):
    report_file = os.path.join(folder, 'validate.json')
    start = time.perf_counter()
    validate_on_lfw.main(validate_on_lfw.parse_arguments([
        aligned_dir, str(MODEL), '--lfw_pairs', pairs_file, '--lfw_batch_size', str(batch_size),
        '--json', report_file]))
    wall = time.perf_counter() - start
    with open(report_file) as f:
        report = json.load(f)
    seconds = report['seconds']
    return {'wall s': wall, 'load model s': seconds['load_model'], 'embedding s': seconds['embedding'],
            'model busy s': seconds['model'], 'input wait s': seconds['input_wait'],
            'files': report['nrof_images_embedded'],
            'embedding ms/image': 1000 * seconds['embedding'] / report['nrof_images_embedded']}


def run_model(model, images, nrof_batches):
    model(images)  # warm-up outside the timing
    start = time.perf_counter()
    for _ in range(nrof_batches):
        np.asarray(model(images))
    seconds = time.perf_counter() - start
    return {'model ms/image': 1000 * seconds / (nrof_batches * len(images))}


def run_input(paths, batch_size):
    dataset = facenet.create_input_pipeline(paths, np.arange(len(paths)), 0, 160, batch_size)
    start = time.perf_counter()
    count = sum(int(labels.shape[0]) for _, labels in dataset)
    seconds = time.perf_counter() - start
    return {'input ms/image': 1000 * seconds / count, 'input s': seconds}


def run_serial(model, paths, batch_size):
    load_seconds = model_seconds = 0.0
    for start_index in range(0, len(paths), batch_size):
        start = time.perf_counter()
        images = facenet.load_data(paths[start_index:start_index + batch_size], False, False, 160)
        load_seconds += time.perf_counter() - start
        start = time.perf_counter()
        np.asarray(model(images))
        model_seconds += time.perf_counter() - start
    return {'serial s': load_seconds + model_seconds, 'serial load s': load_seconds, 'serial model s': model_seconds,
            'serial ms/image': 1000 * (load_seconds + model_seconds) / len(paths)}


def main(args):
    if args.aligned_dir is None:
        args.aligned_dir = DEFAULT_ALIGNED_DIR
        prepare_aligned_lfw(args.aligned_dir)
    with tempfile.TemporaryDirectory() as folder:
        pairs_file = pairs_subset(args.nrof_pairs, folder)
        paths, _ = lfw.get_paths(args.aligned_dir, lfw.read_pairs(pairs_file))
        files = list(dict.fromkeys(paths))
        model = facenet.load_model(str(MODEL))
        batch = facenet.load_data(files[:args.lfw_batch_size], False, False, 160).astype(np.float32)
        contenders = {
            'validate': lambda: run_validate(args.aligned_dir, pairs_file, args.lfw_batch_size, folder),
            'model': lambda: run_model(model, batch, args.model_batches),
            'input': lambda: run_input(files, args.lfw_batch_size),
            'serial': lambda: run_serial(model, paths, args.lfw_batch_size),
        }
        figures = {}
        for repeat in range(args.repeats):
            for name in args.contenders:
                measured = contenders[name]()
                print(f'round {repeat + 1} {name}: ' + ', '.join(f'{k} {v:.2f}' for k, v in measured.items()),
                      flush=True)
                for key, value in measured.items():
                    figures.setdefault(key, []).append(value)
    medians = {key: statistics.median(values) for key, values in figures.items()}
    print(f'\nMedians over {args.repeats} interleaved rounds ({len(paths)} pair images, {len(files)} files, '
          f'batch {args.lfw_batch_size}):')
    for key, value in medians.items():
        print(f'  {key:22s} {value:9.2f}')
    if 'embedding ms/image' in medians and 'model ms/image' in medians:
        print(f'  embedding phase / model alone (per image): '
              f'{medians["embedding ms/image"] / medians["model ms/image"]:.3f}')
    if 'input ms/image' in medians and 'model ms/image' in medians:
        print(f'  input pipeline is {medians["model ms/image"] / medians["input ms/image"]:.1f}x faster than the model')
    if 'serial s' in medians and 'wall s' in medians:
        print(f'  serial load-then-model / validate_on_lfw wall time: {medians["serial s"] / medians["wall s"]:.2f}')


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--aligned_dir', default=None,
                        help=f'The aligned LFW images (default: aligned into {DEFAULT_ALIGNED_DIR} first).')
    parser.add_argument('--repeats', type=int, default=3, help='Interleaved rounds.')
    parser.add_argument('--contenders', nargs='+', default=['validate', 'model', 'input', 'serial'],
                        choices=['validate', 'model', 'input', 'serial'])
    parser.add_argument('--lfw_batch_size', type=int, default=100)
    parser.add_argument('--model_batches', type=int, default=10, help='Batches timed for the model alone.')
    parser.add_argument('--nrof_pairs', type=int, default=None,
                        help='Use only the first pairs of pairs.txt (default: all 6,000).')
    return parser.parse_args(argv)


if __name__ == '__main__':
    main(parse_arguments(sys.argv[1:]))
