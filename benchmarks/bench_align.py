"""Alignment throughput: this port's align pipeline against the `mtcnn` package, side by side.

Contenders, run in interleaved rounds on the same images (A B C A B C ...), steady state (each warmed up
first): this port's align_dataset_mtcnn work per image (read, detect, crop, resize, write PNG, write the
bounding-box line) in one process and in --workers processes; and `mtcnn.MTCNN().detect_faces(image)`
(read and detect only) in a loop. Prints each contender's median images/s, the ratios of medians, the
CPU time per image of the contenders that run in this process (less sensitive to other load on the
machine), and checks that every round of this port wrote the same boxes and crops. With --before REV,
the same work by the code of an earlier git revision runs as more contenders in the same rounds (its
src/ exported by `git archive`, in a process of its own), and each setting's ratio to it is printed:
the package's speed swings with the load on a shared machine more than a change does.

    python benchmarks/bench_align.py                       # 300 shared LFW images, 5 rounds
    python benchmarks/bench_align.py --input_dir DIR --nrof_images 500 --rounds 5 --workers 2
    python benchmarks/bench_align.py --before b15e191      # also against that revision's code

Reference point (same machine kind, 2 cores): the original facenet align script ran 24.8 images/s on
LFW where the mtcnn package's loop ran 11.3 images/s (ratio 2.2); the goal is 4x the original, i.e.
8.8x the mtcnn package. Each contender's ratio to the original (x mtcnn / 2.2) is printed beside it.
"""
import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / 'src'))

from facenet_tf2.detection import aligner  # noqa: E402 pylint: disable=wrong-import-position
from facenet_tf2.dataset import get_dataset  # noqa: E402 pylint: disable=wrong-import-position
from facenet_tf2.images import read_image  # noqa: E402 pylint: disable=wrong-import-position

ORIGINAL_VS_MTCNN = 24.8 / 11.3


class PortContender:
    """This port's alignment of the images into a fresh output folder per round."""

    def __init__(self, image_paths, workers, image_size, margin):
        self.name = f'facenet-tf2 align, workers={workers}'
        self.image_paths = image_paths
        self.pool = aligner.AlignmentPool(workers, (image_size, margin, False, None))
        self.in_process = workers == 1
        self.outputs = []  # per round: {output path relative to the round's folder: (box line, crop md5)}

    def run(self, image_paths):
        output_dir = tempfile.mkdtemp(prefix='bench_align_')
        try:
            tasks = [aligner.AlignTask(path, os.path.join(output_dir, f'{i:06d}.png'))
                     for i, path in enumerate(image_paths)]
            with open(os.path.join(output_dir, 'bounding_boxes.txt'), 'w', encoding='utf-8') as text_file:
                aligner.run_tasks(self.pool, tasks, text_file, aligner.Summary())
            if image_paths is self.image_paths:
                self.outputs.append(_round_outputs(output_dir))
        finally:
            shutil.rmtree(output_dir)

    def close(self):
        self.pool.close()


# The earlier revision's side: its aligner over each list of image paths read from standard input.
_REVISION_SERVER = '''
import json, os, shutil, sys, tempfile
sys.path.insert(0, sys.argv[1])
from facenet_tf2.detection import aligner
workers, image_size, margin = map(int, sys.argv[2:5])
with aligner.AlignmentPool(workers, (image_size, margin, False, None)) as pool:
    for line in sys.stdin:
        output_dir = tempfile.mkdtemp(prefix='bench_align_')
        tasks = [aligner.AlignTask(path, os.path.join(output_dir, f'{i:06d}.png'))
                 for i, path in enumerate(json.loads(line))]
        with open(os.path.join(output_dir, 'bounding_boxes.txt'), 'w', encoding='utf-8') as text_file:
            aligner.run_tasks(pool, tasks, text_file, aligner.Summary())
        shutil.rmtree(output_dir)
        print('done', flush=True)
'''


class RevisionContender:
    """The same work by the code of an earlier git revision, in a Python process of its own."""

    def __init__(self, revision, workers, image_size, margin):
        self.name = f'{revision} align, workers={workers}'
        self.workers = workers
        self.in_process = False
        archive = subprocess.run(['git', '-C', str(REPO_ROOT), 'archive', revision, 'src'], capture_output=True,
                                 check=False)
        if archive.returncode:
            raise SystemExit(f'--before {revision}: {archive.stderr.decode().strip()}')
        self.folder = tempfile.mkdtemp(prefix='bench_align_before_')
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(self.folder, filter='data')
        self.process = subprocess.Popen(
            [sys.executable, '-c', _REVISION_SERVER, os.path.join(self.folder, 'src'), str(workers), str(image_size),
             str(margin)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, image_paths):
        self.process.stdin.write(json.dumps(image_paths) + '\n')
        self.process.stdin.flush()
        if self.process.stdout.readline().strip() != 'done':
            raise SystemExit(f'{self.name}: its process stopped (exit status {self.process.wait()})')

    def close(self):
        self.process.stdin.close()
        self.process.wait()
        shutil.rmtree(self.folder)


def _round_outputs(output_dir):
    with open(os.path.join(output_dir, 'bounding_boxes.txt'), encoding='utf-8') as f:
        lines = [line.replace(output_dir, '').strip() for line in f]
    crops = {}
    for name in sorted(os.listdir(output_dir)):
        if name.endswith('.png'):
            crops[name] = hashlib.md5(Path(output_dir, name).read_bytes()).hexdigest()
    return lines, crops


class MtcnnPackageContender:
    def __init__(self):
        import mtcnn  # pylint: disable=import-outside-toplevel
        self.name = f'mtcnn package {getattr(mtcnn, "__version__", "")} MTCNN().detect_faces'.replace('  ', ' ')
        self.detector = mtcnn.MTCNN()

    def run(self, image_paths):
        for path in image_paths:
            self.detector.detect_faces(read_image(path))

    def close(self):
        pass


def main(args):
    shared = Path(os.environ.get('FACENET_SHARED', REPO_ROOT.parent / 'shared'))
    input_dir = args.input_dir or str(shared / 'lfw' / 'lfw-deepfunneled')
    image_paths = [path for cls in get_dataset(input_dir) for path in cls.image_paths][:args.nrof_images]
    warmup_paths = image_paths[:2 * aligner.BATCH_SIZE]
    print(f'{len(image_paths)} images from {input_dir}; {args.rounds} interleaved rounds; '
          f'{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}')

    settings = [1] + [w for w in args.workers if w > 1]
    before = [RevisionContender(args.before, w, args.image_size, args.margin) for w in settings] if args.before else []
    contenders = [PortContender(image_paths, w, args.image_size, args.margin) for w in settings]
    contenders += before + [MtcnnPackageContender()]
    rates = {c.name: [] for c in contenders}
    cpu_ms = {c.name: [] for c in contenders}  # CPU time of this process per image: steadier than wall time
    try:
        for contender in contenders:
            contender.run(warmup_paths)
        for _ in range(args.rounds):
            for contender in contenders:
                start, cpu_start = time.perf_counter(), time.process_time()
                contender.run(image_paths)
                rates[contender.name].append(len(image_paths) / (time.perf_counter() - start))
                cpu_ms[contender.name].append(1000 * (time.process_time() - cpu_start) / len(image_paths))
    finally:
        for contender in contenders:
            contender.close()

    medians = {name: statistics.median(values) for name, values in rates.items()}
    mtcnn_name = contenders[-1].name
    print(f'{"contender":48s} {"median img/s":>12s} {"x mtcnn":>8s} {"x original":>10s} {"CPU ms/img":>10s}   '
          'img/s per round')
    for contender in contenders:
        name = contender.name
        # Worker processes' CPU time is not this process's: shown only for contenders running here.
        cpu = f'{statistics.median(cpu_ms[name]):10.1f}' if getattr(contender, 'in_process', True) else f'{"-":>10s}'
        ratio = medians[name] / medians[mtcnn_name]
        print(f'{name:48s} {medians[name]:12.1f} {ratio:8.2f} {ratio / ORIGINAL_VS_MTCNN:10.2f} {cpu}   '
              + ' '.join(f'{v:.1f}' for v in rates[name]))
    print(f'goal: >= {4 * ORIGINAL_VS_MTCNN:.1f}x the mtcnn package (4x the original facenet script, '
          f'which ran {ORIGINAL_VS_MTCNN:.1f}x it on this machine kind)')
    for port, before in zip(contenders, [c for c in contenders if isinstance(c, RevisionContender)]):
        print(f'{port.name}: {medians[port.name] / medians[before.name]:.3f}x the code at {args.before}')
    port_outputs = [output for contender in contenders if isinstance(contender, PortContender)
                    for output in contender.outputs]
    identical = all(output == port_outputs[0] for output in port_outputs)
    print(f'identical boxes and crops in all {len(port_outputs)} rounds of this port: {identical}')
    return 0 if identical else 1


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--input_dir', default=None,
                        help='Folder of identity folders (default: $FACENET_SHARED/lfw/lfw-deepfunneled).')
    parser.add_argument('--nrof_images', type=int, default=300, help='Number of images (the first ones).')
    parser.add_argument('--rounds', type=int, default=5, help='Timed rounds per contender.')
    parser.add_argument('--workers', type=int, nargs='*', default=[2],
                        help='Also time this port with these numbers of worker processes.')
    parser.add_argument('--before', default=None, metavar='REV',
                        help='Also time the code of this git revision (e.g. a commit before a speed change).')
    parser.add_argument('--image_size', type=int, default=160)
    parser.add_argument('--margin', type=int, default=32)
    return parser.parse_args(argv)


if __name__ == '__main__':
    sys.exit(main(parse_arguments(sys.argv[1:])))
