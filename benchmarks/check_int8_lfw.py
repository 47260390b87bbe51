"""LFW accuracy of the float32 and INT8 ONNX exports of each pretrained model, and the INT8
embeddings of 20170512-110547 against the original's (../shared/reference).

For each name: freeze_graph.py NAME OUT.pb --onnx NAME.onnx --int8 NAME_int8.onnx --calibration_dir
CALIB, with CALIB the shared CelebA photos aligned like LFW (align_dataset_mtcnn.py --image_size 160
--margin 32), so calibration and evaluation faces are disjoint; then validate_on_lfw.py on the INT8 (with
--evaluate_float32 also the float32) .onnx file with the README's protocol of the name (benchmarks/check_pretrained_lfw.py). LFW must
already be aligned (check_pretrained_lfw.py leaves it in --aligned_dir). Prints a Markdown table
and the distribution of the cosine similarity between the INT8 embeddings of 20170512-110547 and
the original code's; exits with status 1 if an INT8 accuracy is more than --tolerance below the
float32 one.

    python benchmarks/check_int8_lfw.py --aligned_dir /tmp/facenet_tf2_lfw_mtcnnpy_160
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / 'src'))
sys.path.insert(0, str(REPO_ROOT / 'benchmarks'))

import freeze_graph  # noqa: E402 pylint: disable=wrong-import-position
import validate_on_lfw  # noqa: E402 pylint: disable=wrong-import-position
from facenet_tf2.commands import align_dataset_mtcnn  # noqa: E402 pylint: disable=wrong-import-position
from check_pretrained_lfw import MEASURED_ACCURACY, SHARED, validate_arguments  # noqa: E402 pylint: disable=wrong-import-position
from facenet_tf2.model_io import load_model  # noqa: E402 pylint: disable=wrong-import-position
from facenet_tf2.export import DEFAULT_CALIBRATION_IMAGES, calibration_faces  # noqa: E402 pylint: disable=wrong-import-position
from facenet_tf2.pretrained import PRETRAINED_MODELS  # noqa: E402 pylint: disable=wrong-import-position

REFERENCE = SHARED / 'reference' / 'original_embeddings_20170512-110547_lfw.npz'


def cosine_to_reference(embeddings_file):
    """Cosine similarity of each LFW image's embedding with the original code's, by path."""
    ours, reference = np.load(embeddings_file), np.load(REFERENCE)
    index = {str(path): i for i, path in enumerate(ours['paths'])}
    rows = [(index[str(path)], j) for j, path in enumerate(reference['paths'])
            if str(path) in index and ours['found'][index[str(path)]]]
    a = ours['embeddings'][[i for i, _ in rows]]
    b = reference['embeddings'][[j for _, j in rows]]
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def float32_deviations(name, stem, aligned_dir, count=64):
    """On `count` aligned LFW faces: the largest |ONNX float32 - Keras| and |TFLite - Keras|
    embedding difference, and the smallest INT8/float32 cosine similarity."""
    faces = calibration_faces(aligned_dir, count, 160, PRETRAINED_MODELS[name].standardization)
    keras = load_model(name)(faces).numpy()
    onnx_float, tflite = (load_model(stem + suffix)(faces).numpy() for suffix in ('.onnx', '.tflite'))
    int8 = load_model(stem + '_int8.onnx')(faces).numpy()
    return (np.abs(onnx_float - keras).max(), np.abs(tflite - keras).max(),
            np.min(np.sum(int8 * onnx_float, axis=1)))


def main(args):
    os.makedirs(args.work_dir, exist_ok=True)
    calibration = os.path.join(args.work_dir, 'celeba_aligned_160')
    # The aligner reads one folder per person; the CelebA photos lie in one folder, taken as one "person".
    celeba = os.path.join(args.work_dir, 'celeba_raw')
    os.makedirs(celeba, exist_ok=True)
    if not os.path.exists(os.path.join(celeba, 'celeba')):
        os.symlink(SHARED / 'celeba_attributes' / 'images', os.path.join(celeba, 'celeba'))
    align_dataset_mtcnn.main(align_dataset_mtcnn.parse_arguments(
        [celeba, calibration, '--image_size', '160', '--margin', '32']))
    rows, deviations, failed = [], [], False
    for name in args.models:
        stem = os.path.join(args.work_dir, name)
        if not all(os.path.exists(stem + suffix) for suffix in ('.onnx', '_int8.onnx', '.tflite')):
            freeze_graph.main(freeze_graph.parse_arguments(
                [name, stem + '.pb', '--onnx', stem + '.onnx', '--int8', stem + '_int8.onnx', '--tflite',
                 stem + '.tflite', '--calibration_dir', calibration, '--calibration_images',
                 str(args.calibration_images)]))
        deviations.append((name, *float32_deviations(name, stem, args.aligned_dir)))
        results = {}
        for variant in ('', '_int8') if args.evaluate_float32 else ('_int8',):
            command = validate_arguments(name, args.aligned_dir, args.lfw_pairs)
            command[1] = stem + variant + '.onnx'
            command += ['--save_embeddings', stem + variant + '_lfw.npz']
            print(f'\n== python src/validate_on_lfw.py {" ".join(command)}', flush=True)
            results[variant] = validate_on_lfw.main(validate_on_lfw.parse_arguments(command))
        float_accuracy = results[''].accuracy if args.evaluate_float32 else MEASURED_ACCURACY[name]
        drop = float_accuracy - results['_int8'].accuracy
        failed |= drop > args.tolerance
        rows.append((name, float_accuracy, results['_int8'].accuracy, drop))
    print(f'\nINT8: static QDQ, per-channel weights, MinMax calibration on {args.calibration_images} aligned CelebA '
          'faces')
    print(f'| model | float32 ({"ONNX" if args.evaluate_float32 else "README, Keras"}) | INT8 ONNX | difference |')
    print('|---|---|---|---|')
    for name, float_accuracy, int8_accuracy, drop in rows:
        print(f'| {name} | {float_accuracy:.5f} | {int8_accuracy:.5f} | {-drop:+.5f} |')
    print('\n| model | ONNX float32 vs Keras, max abs | TFLite vs Keras, max abs | INT8 vs float32 cosine, min |')
    print('|---|---|---|---|')
    for name, onnx_diff, tflite_diff, cosine in deviations:
        print(f'| {name} | {onnx_diff:.1e} | {tflite_diff:.1e} | {cosine:.4f} |')
    if '20170512-110547' in args.models and REFERENCE.exists():
        for variant in ('', '_int8') if args.evaluate_float32 else ('_int8',):
            cosine = cosine_to_reference(os.path.join(args.work_dir, '20170512-110547' + variant + '_lfw.npz'))
            quantiles = np.quantile(cosine, [0, 0.001, 0.01, 0.5])
            print(f'20170512-110547{variant or " float32"} vs the original\'s embeddings, {len(cosine)} images: '
                  f'cosine min {quantiles[0]:.4f}, 0.1% {quantiles[1]:.4f}, 1% {quantiles[2]:.4f}, '
                  f'median {quantiles[3]:.5f}, mean {cosine.mean():.5f}')
    return 1 if failed else 0


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--aligned_dir', default=os.path.join(tempfile.gettempdir(), 'facenet_tf2_lfw_mtcnnpy_160'),
                        help='LFW aligned with --image_size 160 --margin 32 (check_pretrained_lfw.py\'s default)')
    parser.add_argument('--work_dir', default=os.path.join(tempfile.gettempdir(), 'facenet_tf2_int8'),
                        help='Where the exports, aligned calibration faces and embeddings go (kept: a re-run '
                             'reuses the exports)')
    parser.add_argument('--lfw_pairs', default=str(REPO_ROOT / 'data' / 'pairs.txt'))
    parser.add_argument('--models', nargs='+', default=list(PRETRAINED_MODELS), choices=list(PRETRAINED_MODELS))
    parser.add_argument('--calibration_images', type=int, default=DEFAULT_CALIBRATION_IMAGES)
    parser.add_argument('--tolerance', type=float, default=0.003)
    parser.add_argument('--evaluate_float32', action='store_true',
                        help='Also run LFW on the float32 ONNX model (it equals the Keras network within 1e-6, '
                             'see the deviation table); by default the README\'s float32 figure is used')
    return parser.parse_args(argv)


if __name__ == '__main__':
    sys.exit(main(parse_arguments(sys.argv[1:])))
