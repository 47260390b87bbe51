"""train_tripletloss.py on real faces: fine-tuning (or training from scratch) on LFW identities that
a held-out, identity-disjoint pairs file does not use, with the held-out verification accuracy
before training and after each epoch (the run's own LFW evaluation, EMA weights).

It splits ../shared/lfw/lfw-deepfunneled (identities with 2+ images) into a held-out part and a
training part (symbolic links under --work_dir), writes the held-out pairs with lfw.generate_pairs,
measures the starting accuracy of --pretrained_model on them, runs the script and summarises its
log: per epoch the mean triplet loss, the fraction of active triplets, the triplets selected per
round and the held-out accuracy; the share of time spent in sampling and selection.

    python benchmarks/finetune_tripletloss.py --work_dir /tmp/ft_vggface --people_per_batch 15 --images_per_person 4 \\
        --batch_size 30 --epoch_size 10 --max_nrof_epochs 3 --optimizer ADAGRAD --learning_rate 0.002
    python benchmarks/finetune_tripletloss.py --work_dir /tmp/ft_scratch --pretrained_model '' --people_per_batch 15 \\
        --images_per_person 4 --batch_size 30 --epoch_size 8 --max_nrof_epochs 3 --optimizer ADAGRAD --learning_rate 0.05

Arguments it does not know go to train_tripletloss.py (the README lists the runs it measured).
"""
import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / 'src'))

import lfw  # noqa: E402 pylint: disable=wrong-import-position
from facenet_tf2.dataset import get_dataset  # noqa: E402 pylint: disable=wrong-import-position

SHARED = Path(os.environ.get('FACENET_SHARED', REPO_ROOT.parent / 'shared'))
STEP_LINE = re.compile(r'^Epoch: \[(\d+)\]\[\d+/\d+\]\tTime ([\d.]+)\tLoss ([\d.naif-]+)\tTriplet ([\d.naif-]+)\t'
                       r'Active ([\d.]+)')
ROUND_LINE = re.compile(r'^\(nrof_random_negs, nrof_triplets\) = \((\d+), (\d+)\): time=([\d.]+) seconds')


def split_identities(lfw_dir, work_dir, nrof_heldout, nrof_train, seed):
    """Links identities with 2+ images into work_dir/heldout and work_dir/train, disjoint."""
    names = sorted(cls.name for cls in get_dataset(lfw_dir) if len(cls.image_paths) >= 2)
    order = np.random.default_rng(seed).permutation(len(names))
    parts = {'heldout': [names[i] for i in order[:nrof_heldout]],
             'train': [names[i] for i in order[nrof_heldout:nrof_heldout + nrof_train]]}
    for part, chosen in parts.items():
        folder = work_dir / part
        folder.mkdir(parents=True, exist_ok=True)
        for name in chosen:
            if not (folder / name).exists():
                (folder / name).symlink_to(Path(lfw_dir) / name)
    return work_dir / 'heldout', work_dir / 'train'


def starting_accuracy(model, heldout_dir, pairs_file, image_size, nrof_folds):
    from facenet_tf2.embeddings import embed_images  # pylint: disable=import-outside-toplevel
    from facenet_tf2.model_io import load_model  # pylint: disable=import-outside-toplevel
    paths, issame = lfw.get_paths(str(heldout_dir), lfw.read_pairs(str(pairs_file)))
    embedded = embed_images(load_model(model), paths, image_size, 90)
    _, _, accuracy, _, _, _ = lfw.evaluate(embedded.embeddings.astype(np.float64), issame, nrof_folds=nrof_folds)
    return float(np.mean(accuracy))


def summarise(log_text, logs_dir):
    """({epoch: step times, triplet losses, active fractions}, [(pairs, triplets, seconds) per round],
    held-out accuracy after each epoch)."""
    epochs, rounds = {}, []
    for line in log_text.splitlines():
        step = STEP_LINE.match(line)
        if step:
            entry = epochs.setdefault(int(step.group(1)), {'time': 0.0, 'triplet': [], 'active': []})
            entry['time'] += float(step.group(2))
            entry['triplet'].append(float(step.group(4)))
            entry['active'].append(float(step.group(5)))
        selected = ROUND_LINE.match(line)
        if selected:
            rounds.append((int(selected.group(1)), int(selected.group(2)), float(selected.group(3))))
    accuracies = [float(line.split('\t')[1]) for result in sorted(Path(logs_dir).glob('*/lfw_result.txt'))
                  for line in result.read_text().splitlines() if line.strip()]
    return epochs, rounds, accuracies


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work_dir', type=Path, required=True)
    parser.add_argument('--lfw_dir', type=Path, default=SHARED / 'lfw' / 'lfw-deepfunneled')
    parser.add_argument('--pretrained_model', default=str(SHARED / 'models' / '20170512-110547' / '20170512-110547.pb'))
    parser.add_argument('--nrof_heldout', type=int, default=200)
    parser.add_argument('--nrof_train', type=int, default=600)
    parser.add_argument('--nrof_folds', type=int, default=5)
    parser.add_argument('--nrof_pairs', type=int, default=60)
    parser.add_argument('--seed', type=int, default=0)
    args, script_args = parser.parse_known_args(argv)
    heldout_dir, train_dir = split_identities(args.lfw_dir, args.work_dir, args.nrof_heldout, args.nrof_train,
                                              args.seed)
    pairs_file = args.work_dir / 'heldout_pairs.txt'
    if not pairs_file.exists():
        folds = lfw.generate_pairs(get_dataset(str(heldout_dir)), args.nrof_folds, args.nrof_pairs, args.seed)
        lfw.write_pairs(str(pairs_file), folds, args.nrof_pairs)
    if args.pretrained_model:
        start = starting_accuracy(args.pretrained_model, heldout_dir, pairs_file, 160, args.nrof_folds)
        print(f'held-out accuracy of {args.pretrained_model} before training: {start:.5f}')
    logs_dir, models_dir = args.work_dir / 'logs', args.work_dir / 'models'
    command = [sys.executable, str(REPO_ROOT / 'src' / 'train_tripletloss.py'), '--data_dir', str(train_dir),
               '--lfw_dir', str(heldout_dir), '--lfw_pairs', str(pairs_file), '--lfw_nrof_folds', str(args.nrof_folds),
               '--logs_base_dir', str(logs_dir), '--models_base_dir', str(models_dir),
               '--model_def', 'models.inception_resnet_v1', '--image_size', '160', '--no_resume']
    if args.pretrained_model:
        command += ['--pretrained_model', args.pretrained_model]
    command += script_args
    print(' '.join(command), flush=True)
    process = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
                             env=dict(os.environ, PYTHONPATH=str(REPO_ROOT / 'src')))
    (args.work_dir / 'train.log').write_text(process.stdout)
    if process.returncode:
        print(process.stdout[-3000:])
        return process.returncode
    epochs, rounds, accuracies = summarise(process.stdout, logs_dir)
    for epoch, entry in sorted(epochs.items()):
        accuracy = f', held-out accuracy {accuracies[epoch - 1]:.5f}' if len(accuracies) >= epoch else ''
        print(f'epoch {epoch}: {len(entry["triplet"])} steps, triplet loss {np.mean(entry["triplet"]):.4f} '
              f'(first {entry["triplet"][0]:.4f}, last {entry["triplet"][-1]:.4f}), fraction active '
              f'{np.mean(entry["active"]):.3f}, step time {entry["time"]:.1f} s{accuracy}')
    if rounds:
        selected = [r[1] for r in rounds]
        print(f'{len(rounds)} sampling rounds: triplets selected per round {selected}; sampling forward pass + '
              f'selection {sum(r[2] for r in rounds):.1f} s against {sum(e["time"] for e in epochs.values()):.1f} s '
              'of train steps')
    return 0


if __name__ == '__main__':
    sys.exit(main())
