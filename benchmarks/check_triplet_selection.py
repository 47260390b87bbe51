"""Checks facenet_tf2's triplet selection and loss against a reference made by the original code.

The reference is the format of ../shared/reference/train_tripletloss/ (see its README): a JSON file
and beside it an NPZ (named by the JSON's "npz" entry, else the JSON's name with .npz). From the
NPZ it takes the embeddings and, from the JSON, the class sizes, people_per_batch and alpha
(class sizes from the labels where the JSON has none). Every group of arrays is compared: the base
group and each `<name>/` group holding `cand_offsets` and `cand_flat` (its alpha from the JSON's
extras.<name>.alpha or from a name like `alpha1`) are candidate sets, which must be identical; a
`hardest/` group holds each pair with its nearest other-class negative. Every recorded loss
(`triplet_loss*`, `triplet_basic_loss*` in any group, at the group's alpha or the `_alpha<x>` in its
name; float32 through TensorFlow, `float64` ones in NumPy), the triplets and counts, the JSON's
recorded losses and counts, and its random-choice cross-checks are recomputed. Prints one line per
quantity; exit status 1 if anything differs.

    python benchmarks/check_triplet_selection.py ../shared/reference/train_tripletloss/reference.json
"""
import argparse
import glob
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / 'src'))

from facenet_tf2.training import triplets as selection  # noqa: E402 pylint: disable=wrong-import-position

FLOAT32_LOSS_TOLERANCE = 1e-6
FLOAT64_TOLERANCE = 1e-12
INPUTS = ('alpha', 'people_per_batch')
_ALPHA_IN_NAME = re.compile(r'alpha([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)')


class ReferenceError(Exception):
    """The reference cannot be read or is not in the expected format."""


def load_reference(json_path):
    """(the JSON as a dict, {array name: array}) of a reference."""
    with open(json_path, encoding='utf-8') as f:
        meta = json.load(f)
    folder = os.path.dirname(os.path.abspath(json_path))
    named = meta.get('npz') or meta.get('arrays')
    if isinstance(named, str):
        npz_path = os.path.join(folder, named)
    else:
        npz_path = os.path.splitext(os.path.abspath(json_path))[0] + '.npz'
        beside = glob.glob(os.path.join(folder, '*.npz'))
        if not os.path.isfile(npz_path) and len(beside) == 1:
            npz_path = beside[0]
    if not os.path.isfile(npz_path):
        raise ReferenceError(f'no NPZ for {json_path} (looked for {npz_path})')
    with np.load(npz_path) as npz:
        return meta, {key: npz[key] for key in npz.files}


def _alpha_from_name(name):
    match = None
    for match in _ALPHA_IN_NAME.finditer(name):
        pass
    return float(match.group(1).rstrip('.')) if match else None


def _class_sizes(meta, arrays):
    if 'nrof_images_per_class' in meta:
        return [int(n) for n in meta['nrof_images_per_class']]
    labels = arrays.get('labels')
    if labels is None:
        raise ReferenceError('neither nrof_images_per_class in the JSON nor labels in the NPZ')
    boundaries = np.flatnonzero(np.diff(labels)) + 1
    return np.diff(np.concatenate([[0], boundaries, [len(labels)]])).tolist()


def _groups(meta, arrays):
    """{prefix: alpha or None} for '' and every '<name>/' prefix of the NPZ's keys."""
    groups = {'': float(meta['alpha'])}
    extras = meta.get('extras', {})
    for key in arrays:
        if '/' in key:
            name = key.rsplit('/', 1)[0]
            alpha = extras.get(name, {}).get('alpha') if isinstance(extras.get(name), dict) else None
            groups[name + '/'] = float(alpha) if alpha is not None else _alpha_from_name(name)
    return groups


def hardest_negative_triplets(embeddings, nrof_images_per_class, people_per_batch):
    """Every anchor-positive pair with its nearest negative of another class (exact float64)."""
    emb = np.asarray(embeddings, np.float64)
    labels = np.full(len(emb), -1)
    labels[:sum(nrof_images_per_class)] = np.repeat(np.arange(len(nrof_images_per_class)), nrof_images_per_class)
    rows = []
    for anchor, positive in selection.anchor_positive_pairs(nrof_images_per_class, people_per_batch):
        dist_sqr = np.sum(np.square(emb[anchor] - emb), 1)
        dist_sqr[labels == labels[anchor]] = np.nan
        rows.append((anchor, positive, int(np.nanargmin(dist_sqr))))
    return np.array(rows, np.int64).reshape(-1, 3)


def _tf_loss(emb32, triplets, alpha):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    parts = [tf.constant(emb32[triplets[:, k]]) for k in range(3)]
    return float(selection.triplet_loss(*parts, tf.constant(alpha, tf.float32)))


def _basic_loss_float64(emb64, triplets, alpha):
    a, p, n = (emb64[triplets[:, k]] for k in range(3))
    return np.sum(np.square(a - p), 1) - np.sum(np.square(a - n), 1) + alpha


class Checker:
    """Recomputes everything a reference holds; `results` collects (ok, line)."""

    def __init__(self, meta, arrays):
        self.meta, self.arrays = meta, arrays
        self.results = []
        self.emb32 = np.asarray(arrays['embeddings'], np.float32)
        self.emb64 = self.emb32.astype(np.float64)
        self.sizes = _class_sizes(meta, arrays)
        self.people_per_batch = int(meta.get('people_per_batch', len(self.sizes)))
        self.groups = _groups(meta, arrays)
        self.candidates = {}
        self.triplets = {}

    def report(self, ok, line):
        self.results.append((bool(ok), line))

    def compare_exact(self, name, ours, recorded):
        ours, recorded = np.asarray(ours), np.asarray(recorded)
        same = ours.shape == recorded.shape and np.array_equal(ours, recorded)
        detail = 'identical' if same else f'DIFFERENT (ours {ours.shape}, recorded {recorded.shape})'
        self.report(same, f'{name}: {detail}')

    def compare_close(self, name, ours, recorded, tolerance):
        ours, recorded = np.asarray(ours, np.float64), np.asarray(recorded, np.float64)
        if ours.shape != recorded.shape:
            self.report(False, f'{name}: shape {ours.shape}, recorded {recorded.shape}')
            return
        diff = float(np.max(np.abs(ours - recorded))) if ours.size else 0.0
        values = f' (ours {ours.item():.8f}, recorded {recorded.item():.8f})' if ours.size == 1 else ''
        self.report(diff <= tolerance, f'{name}: max abs diff {diff:.3g}{values}')

    def alpha(self, prefix):
        alpha = self.groups[prefix]
        if alpha is None:
            raise ReferenceError(f'cannot tell the alpha of group {prefix!r}: no extras.{prefix.rstrip("/")}.alpha '
                                 'in the JSON and no alpha in its name')
        return alpha

    def check_candidate_sets(self):
        for prefix in self.groups:
            if prefix + 'cand_offsets' not in self.arrays or prefix + 'cand_flat' not in self.arrays:
                continue
            alpha = self.alpha(prefix)
            found = selection.triplet_candidates(self.emb64, self.sizes, alpha, self.people_per_batch)
            self.candidates[prefix] = found
            offsets, flat = self.arrays[prefix + 'cand_offsets'], self.arrays[prefix + 'cand_flat']
            name = f'{prefix}candidate sets (alpha {alpha:g})'
            if len(offsets) != len(found.offsets):
                self.report(False, f'{name}: {len(found.offsets) - 1} pairs, recorded {len(offsets) - 1}')
                continue
            differing = [k for k in range(len(offsets) - 1) if not np.array_equal(
                found.flat[found.offsets[k]:found.offsets[k + 1]], flat[offsets[k]:offsets[k + 1]])]
            self.report(not differing, f'{name}: {len(offsets) - 1 - len(differing)} of {len(offsets) - 1} pairs '
                        f'identical ({len(flat)} candidates recorded, {len(found.flat)} found)'
                        + (f'; differing pairs {differing[:10]}' if differing else ''))
            for key, ours in (('pairs', found.pairs), ('nrof_candidates', np.diff(found.offsets))):
                if prefix + key in self.arrays:
                    self.compare_exact(prefix + key, ours, self.arrays[prefix + key])
            if prefix + 'pos_dist_sqr' in self.arrays:
                self.compare_close(prefix + 'pos_dist_sqr', found.pos_dist_sqr, self.arrays[prefix + 'pos_dist_sqr'],
                                   FLOAT64_TOLERANCE)
            with_candidates = np.diff(found.offsets) > 0
            self.triplets[prefix] = np.column_stack(
                [found.pairs[with_candidates], found.flat[found.offsets[:-1][with_candidates]]]).reshape(-1, 3)

    def check_triplets(self):
        for prefix in self.groups:
            key = prefix + 'triplets'
            if key not in self.arrays:
                continue
            if prefix == 'hardest/':
                self.triplets[prefix] = hardest_negative_triplets(self.emb64, self.sizes, self.people_per_batch)
            if prefix in self.triplets:
                self.compare_exact(key + (' (nearest negatives)' if prefix == 'hardest/' else
                                          ' (pairs with candidates, smallest candidate)'),
                                   self.triplets[prefix], self.arrays[key])
            else:
                self.report(True, f'{key}: no rule to recompute this group\'s triplets; losses checked on them')

    def loss_alpha(self, prefix, name):
        from_name = _alpha_from_name(name)
        return from_name if from_name is not None else self.alpha(prefix)

    def check_losses(self):
        for key in sorted(self.arrays):
            prefix, _, name = key.rpartition('/')
            prefix = prefix + '/' if prefix else ''
            if not name.startswith(('triplet_loss', 'triplet_basic_loss')):
                continue
            triplets = self.arrays[prefix + 'triplets'].astype(np.int64).reshape(-1, 3)
            alpha = self.loss_alpha(prefix, name[len('triplet_'):])
            basic = _basic_loss_float64(self.emb64, triplets, alpha)
            if name.startswith('triplet_basic_loss'):
                self.compare_close(f'{key} (alpha {alpha:g})', basic, self.arrays[key], FLOAT64_TOLERANCE)
            elif 'float64' in name:
                self.compare_close(f'{key} (alpha {alpha:g})', np.maximum(basic, 0.0).mean(), self.arrays[key],
                                   FLOAT64_TOLERANCE)
            else:
                self.compare_close(f'{key} (alpha {alpha:g}, TensorFlow float32)', _tf_loss(self.emb32, triplets, alpha),
                                   self.arrays[key], FLOAT32_LOSS_TOLERANCE)

    def recorded_scalars(self):
        """(path, group prefix, alpha, name, value) for every number in the JSON outside lists: a
        dict under `extras` names a group, a dict named like `alpha0.2` sets the alpha below it."""
        def walk(node, path, prefix, alpha):
            for name, value in node.items():
                if isinstance(value, dict):
                    if path == ('extras',):
                        child_prefix, child_alpha = name + '/', self.groups.get(name + '/')
                    else:
                        named_alpha = _alpha_from_name(name)
                        child_prefix, child_alpha = prefix, alpha if named_alpha is None else named_alpha
                    yield from walk(value, path + (name,), child_prefix, child_alpha)
                elif isinstance(value, (int, float)) and not isinstance(value, bool) and name not in INPUTS:
                    yield '.'.join(path + (name,)), prefix, alpha, name, value
        yield from walk(self.meta, (), '', self.groups[''])

    def check_recorded_scalars(self):
        not_compared = []
        for path, prefix, alpha, name, value in self.recorded_scalars():
            ours = self.scalar(prefix, alpha, name)
            if ours is None:
                not_compared.append(path)
            elif isinstance(ours, float):
                tolerance = FLOAT64_TOLERANCE if 'float64' in name else FLOAT32_LOSS_TOLERANCE
                self.compare_close(f'JSON {path}', ours, value, tolerance)
            else:
                self.report(ours == value, f'JSON {path}: ours {ours}, recorded {value}')
        if not_compared:
            self.report(True, 'JSON values not about selection or loss (not compared): ' + ', '.join(not_compared))

    def scalar(self, prefix, alpha, name):
        """Our value for a recorded JSON number, or None for numbers of other concerns."""
        triplets = self.triplets.get(prefix)
        found = self.candidates.get(prefix)
        if found is None and prefix == 'hardest/':
            found = self.candidates.get('')
        counts = np.diff(found.offsets) if found is not None else None
        if name in ('triplet_loss_tf_float32', 'triplet_loss_float64_numpy') and triplets is not None:
            if name.endswith('float32'):
                return _tf_loss(self.emb32, triplets, alpha)
            return float(np.maximum(_basic_loss_float64(self.emb64, triplets, alpha), 0.0).mean())
        if name in ('nrof_triplets_with_positive_loss', 'nrof_positive_terms') and triplets is not None:
            return int((_basic_loss_float64(self.emb64, triplets, alpha) > 0).sum())
        if name == 'nrof_triplets' and triplets is not None:
            return len(triplets)
        if counts is None:
            return None
        return {'nrof_pairs': len(counts), 'num_trips_returned_by_original': len(counts),
                'nrof_pairs_without_candidates': int((counts == 0).sum()),
                'total_candidates': int(counts.sum())}.get(name)

    def check_random_choices(self):
        """The recorded runs of the original's random choice, repeated with the same seeds."""
        found = self.candidates.get('')
        for record in self.meta.get('random_choice_crosscheck', []):
            chosen, nrof_pairs = selection.select_triplet_indices(
                self.emb64, self.sizes, self.people_per_batch, self.groups[''], np.random.RandomState(record['seed']))
            members = {tuple(pair): set(found.flat[found.offsets[k]:found.offsets[k + 1]].tolist())
                       for k, pair in enumerate(found.pairs.tolist())}
            in_sets = all(n in members[(a, p)] for a, p, n in chosen.tolist())
            expected = (record.get('returned_nrof_random_negs', nrof_pairs), record.get('returned_nrof_triplets',
                                                                                          len(chosen)))
            ok = (nrof_pairs, len(chosen)) == expected and in_sets and len(chosen) == int((np.diff(found.offsets) > 0).sum())
            self.report(ok, f'random choice, seed {record["seed"]}: (pairs, triplets) = ({nrof_pairs}, {len(chosen)}), '
                        f'recorded {expected}; every chosen negative in its candidate set: {in_sets}')

    def run(self):
        self.check_candidate_sets()
        self.check_triplets()
        self.check_losses()
        self.check_recorded_scalars()
        self.check_random_choices()
        return all(ok for ok, _ in self.results)


def check_reference(json_path):
    """(True if everything matches, [(ok, line)]) for the reference at json_path."""
    meta, arrays = load_reference(json_path)
    checker = Checker(meta, arrays)
    return checker.run(), checker.results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('reference_json', help='the reference JSON; its NPZ lies beside it')
    args = parser.parse_args(argv)
    prog = os.path.basename(sys.argv[0])
    try:
        ok, results = check_reference(args.reference_json)
    except (OSError, ValueError, KeyError, ReferenceError) as e:
        print(f'{prog}: cannot check {args.reference_json}: {e}, pass a reference in the format of '
              '../shared/reference/train_tripletloss/', file=sys.stderr)
        return 2
    for line_ok, line in results:
        print(('ok      ' if line_ok else 'MISMATCH ') + line)
    print('every candidate set and loss matches' if ok else 'MISMATCH: see the lines above')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
