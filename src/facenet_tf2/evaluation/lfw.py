"""Evaluation on Labeled Faces in the Wild pairs (the original lfw module), for any pairs file.

A pairs file has a header line `nrof_folds nrof_pairs`, then one pair per line: `name i j` (two
images of one identity) or `name1 i name2 j` (two identities), as LFW's pairs.txt. A numeric
field i names the LFW-style file `name/name_%04d` (.jpg or .png); a field ending in an image
extension names that file in the identity's folder, which is how generate_pairs.py refers
to datasets whose files are not numbered the LFW way. Any other field makes the line an error,
so that a stray line is not read as a pair whose images are then silently missing.
"""
import logging
import os

import numpy as np

from facenet_tf2.files import atomic_path
from facenet_tf2.errors import PathError
from facenet_tf2.images import IMAGE_EXTENSIONS, is_image_file
from facenet_tf2.evaluation.metrics import evaluate_verification

log = logging.getLogger(__name__)

# The original looked for .jpg, then .png; other image types come after, so LFW resolves as before.
PAIR_IMAGE_EXTENSIONS = ('.jpg', '.png') + tuple(ext for ext in IMAGE_EXTENSIONS if ext not in ('.jpg', '.png'))


def evaluate(embeddings, actual_issame, nrof_folds=10, distance_metric=0, subtract_mean=False):
    """(tpr, fpr, accuracy, val, val_std, far) for pairs (embeddings[2k], embeddings[2k+1]):
    the fold-mean ROC curve, the per-fold accuracy, and VAL +- std at the mean FAR."""
    result = evaluate_embeddings(embeddings, actual_issame, nrof_folds, distance_metric, subtract_mean)
    return result.roc.tpr, result.roc.fpr, result.roc.accuracy, result.val, result.val_std, result.far


def evaluate_embeddings(embeddings, actual_issame, nrof_folds=10, distance_metric=0, subtract_mean=False):
    """evaluate's numbers with AUC, EER and per-fold detail, as a metrics.VerificationResult."""
    return evaluate_verification(embeddings[0::2], embeddings[1::2], np.asarray(actual_issame), nrof_folds,
                                 distance_metric, subtract_mean)


def add_extension(path):
    """path + the first of .jpg, .png (then other image extensions) that exists."""
    for extension in PAIR_IMAGE_EXTENSIONS:
        if os.path.exists(path + extension):
            return path + extension
    raise FileNotFoundError(f'{path}: no image file with extension {", ".join(PAIR_IMAGE_EXTENSIONS)}')


def _image_path(lfw_dir, name, field):
    if field.isdigit():
        return add_extension(os.path.join(lfw_dir, name, f'{name}_{int(field):04d}'))
    path = os.path.join(lfw_dir, name, field)
    if os.path.isfile(path):
        return path
    # A file name whose extension changed since the pairs were written (the aligner writes .png).
    stem, extension = os.path.splitext(path)
    return add_extension(stem if extension.lower() in IMAGE_EXTENSIONS else path)


def get_paths(lfw_dir, pairs, skipped=None):
    """(path_list, issame_list): the two image paths of every pair, flattened, and whether each
    pair shows one identity.

    A pair whose image is missing raises FileNotFoundError naming the file. With `skipped` a
    list, such pairs are left out instead and recorded there as (pair, problem).
    """
    path_list, issame_list = [], []
    for pair in pairs:
        pair = list(pair)
        try:
            if len(pair) == 3:
                paths = _image_path(lfw_dir, pair[0], pair[1]), _image_path(lfw_dir, pair[0], pair[2])
            elif len(pair) == 4:
                paths = _image_path(lfw_dir, pair[0], pair[1]), _image_path(lfw_dir, pair[2], pair[3])
            else:
                raise ValueError(f'pair {" ".join(pair)!r} has {len(pair)} fields, expected 3 or 4')
        except FileNotFoundError as e:
            if skipped is None:
                raise FileNotFoundError(f'{e} (pair {" ".join(pair)})') from None
            skipped.append((pair, str(e)))
            continue
        path_list += paths
        issame_list.append(len(pair) == 3)
    return path_list, issame_list


def _image_field_ok(field):
    return field.isdigit() or is_image_file(field)


def read_pairs(pairs_filename):
    """The pairs of a pairs file (the header line skipped), a 1-D array of lists of fields.

    A line that is not `name i j` or `name1 i name2 j` (i, j: numbers or image file names) raises
    a PathError naming `file:line`. The original built np.array(pairs) from rows of 3 and 4
    fields, which NumPy 2 refuses.
    """
    pairs = []
    try:
        with open(pairs_filename, 'r') as f:
            lines = f.readlines()
    except UnicodeDecodeError:
        raise PathError(pairs_filename, 'not a text file; give a pairs file like LFW\'s pairs.txt') from None
    if lines and len(lines[0].split()) in (3, 4):
        log.warning('%s: the first line %r looks like a pair; it is skipped as the header line, as the original did',
                    pairs_filename, lines[0].strip())
    for line_number, line in enumerate(lines[1:], start=2):
        pair = line.strip().split()
        if not pair:
            continue
        images = pair[1:] if len(pair) == 3 else pair[1::2]
        if len(pair) not in (3, 4) or not all(_image_field_ok(field) for field in images):
            raise PathError(f'{pairs_filename}:{line_number}', f'expected "name i j" or "name1 i name2 j" '
                                                               f'(i, j: image numbers or file names), got '
                                                               f'{line.strip()[:80]!r}; fix or remove the line')
        pairs.append(pair)
    array = np.empty(len(pairs), dtype=object)
    for index, pair in enumerate(pairs):
        array[index] = pair
    return array


def read_pairs_header(pairs_filename):
    """(nrof_folds, nrof_pairs_per_fold) from the header line, or None when it is not two integers."""
    with open(pairs_filename, 'r') as f:
        fields = f.readline().split()
    if len(fields) == 2 and all(field.isdigit() for field in fields):
        return int(fields[0]), int(fields[1])
    return None


def write_pairs(pairs_filename, folds, nrof_pairs):
    """Writes folds (lists of pairs, each a list of fields) as a pairs file, atomically."""
    with atomic_path(pairs_filename) as temporary:
        with open(temporary, 'w') as f:
            f.write(f'{len(folds)}\t{nrof_pairs}\n')
            for fold in folds:
                f.writelines('\t'.join(pair) + '\n' for pair in fold)


def generate_pairs(dataset, nrof_folds=10, nrof_pairs=300, seed=None):
    """Draws LFW-style pairs from a folder-per-identity dataset (a list of facenet.ImageClass).

    Returns nrof_folds folds, each nrof_pairs same-identity pairs then nrof_pairs pairs of two
    identities, as lists of fields that get_paths resolves back to the drawn files. No identity
    appears in two folds, so a threshold is never chosen on faces it is tested on. Identities are
    dealt so that every fold can reach nrof_pairs; within a fold same-identity pairs are spread
    over as many identities as possible (round robin); no pair repeats. The same dataset and
    seed give the same pairs.

    Raises ValueError when the dataset cannot fill the folds: same-identity pairs need
    identities with two or more images, and the message says how many pairs per fold it can give.
    """
    rng = np.random.default_rng(seed)
    identities = _pairable_identities(dataset)
    rng.shuffle(identities)
    folds = _deal_identities(identities, nrof_folds, nrof_pairs)
    shortfall = _fold_shortfall(folds, nrof_pairs)
    if shortfall:
        feasible = _largest_feasible_nrof_pairs(identities, nrof_folds, nrof_pairs - 1)
        nrof_multi = sum(len(images) >= 2 for _, images in identities)
        raise ValueError(
            f'cannot draw {nrof_folds} folds of {nrof_pairs} + {nrof_pairs} pairs from {len(identities)} identities '
            f'({nrof_multi} with two or more images): {shortfall}. '
            + (f'With {nrof_folds} folds at most {feasible} pairs per fold are possible; ' if feasible
               else f'Not even one pair per fold is possible with {nrof_folds} folds; ')
            + 'lower nrof_pairs or nrof_folds, or add identities with more images.')
    folds = [_same_identity_pairs(fold, nrof_pairs, rng) + _different_identity_pairs(fold, nrof_pairs, rng)
             for fold in folds]
    return [[_pair_fields(pair) for pair in fold] for fold in folds]


def _pairable_identities(dataset):
    """(name, image paths) of identities whose name and image file names fit a pairs file."""
    identities = []
    for cls in dataset:
        if not cls.image_paths:
            continue
        if len(cls.name.split()) != 1:
            log.warning('identity %r left out: a pairs file cannot hold names with whitespace', cls.name)
            continue
        paths = [path for path in cls.image_paths if len(os.path.basename(path).split()) == 1]
        if len(paths) < len(cls.image_paths):
            log.warning('%s: %d image(s) left out: a pairs file cannot hold file names with whitespace',
                        cls.name, len(cls.image_paths) - len(paths))
        if paths:
            identities.append((cls.name, paths))
    return identities


def _same_pair_capacity(images):
    return len(images) * (len(images) - 1) // 2


def _deal_identities(identities, nrof_folds, nrof_pairs):
    """Splits identities into folds: each next to the fold with the fewest same-identity pairs
    available (counted up to nrof_pairs), the largest identities first, then the fewest images."""
    folds = [[] for _ in range(nrof_folds)]
    same_capacity, nrof_images = [0] * nrof_folds, [0] * nrof_folds
    capped = lambda identity: min(_same_pair_capacity(identity[1]), nrof_pairs)
    for identity in sorted(identities, key=capped, reverse=True):  # stable: ties keep the shuffled order
        index = min(range(nrof_folds), key=lambda i: (min(same_capacity[i], nrof_pairs), nrof_images[i], i))
        folds[index].append(identity)
        same_capacity[index] += _same_pair_capacity(identity[1])
        nrof_images[index] += len(identity[1])
    return folds


def _fold_shortfall(folds, nrof_pairs):
    """Why a fold cannot give nrof_pairs pairs of each kind, or '' when all can."""
    for index, fold in enumerate(folds):
        sizes = np.array([len(images) for _, images in fold], np.int64)
        same = sum(_same_pair_capacity(images) for _, images in fold)
        different = (sizes.sum() ** 2 - np.sum(sizes ** 2)) // 2
        if same < nrof_pairs or different < nrof_pairs:
            return (f'fold {index + 1} gets {len(fold)} identities giving {same} same-identity and {different} '
                    f'different-identity pairs')
    return ''


def _largest_feasible_nrof_pairs(identities, nrof_folds, upper):
    """The largest nrof_pairs <= upper that the folds can give (0 if none), by bisection."""
    low, high = 0, upper
    while low < high:
        middle = (low + high + 1) // 2
        if _fold_shortfall(_deal_identities(identities, nrof_folds, middle), middle):
            high = middle - 1
        else:
            low = middle
    return low


def _same_identity_pairs(fold, nrof_pairs, rng):
    """nrof_pairs distinct pairs of two images of one identity, one identity at a time in turn."""
    turns = [fold[i] for i in rng.permutation(len(fold)) if len(fold[i][1]) >= 2]
    used = {name: set() for name, _ in turns}
    pairs = []
    while len(pairs) < nrof_pairs:
        for name, images in [turn for turn in turns if len(used[turn[0]]) < _same_pair_capacity(turn[1])]:
            if len(pairs) == nrof_pairs:
                break
            while True:
                first, second = rng.integers(len(images)), rng.integers(len(images) - 1)
                pair = (min(first, second + (second >= first)), max(first, second + (second >= first)))
                if pair not in used[name]:
                    break
            used[name].add(pair)
            pairs.append((name, images[pair[0]], name, images[pair[1]]))
    return sorted(pairs)


def _different_identity_pairs(fold, nrof_pairs, rng):
    """nrof_pairs distinct pairs of images of two identities, both chosen uniformly."""
    pairs = set()
    while len(pairs) < nrof_pairs:
        first, second = rng.integers(len(fold)), rng.integers(len(fold) - 1)
        second += second >= first
        (name1, images1), (name2, images2) = sorted([fold[first], fold[second]])
        pairs.add((name1, images1[rng.integers(len(images1))], name2, images2[rng.integers(len(images2))]))
    return sorted(pairs)


def _pair_fields(pair):
    """A drawn pair as pairs-file fields: `name i j` or `name1 i name2 j`."""
    name1, path1, name2, path2 = pair
    if name1 == name2:
        return [name1, _image_field(name1, path1), _image_field(name2, path2)]
    return [name1, _image_field(name1, path1), name2, _image_field(name2, path2)]


def _image_field(name, path):
    """The LFW number of the file when get_paths resolves that number to it, else its file name."""
    filename = os.path.basename(path)
    stem = os.path.splitext(filename)[0]
    number = stem[len(name) + 1:]
    if stem.startswith(name + '_') and number.isdigit() and stem == f'{name}_{int(number):04d}':
        try:
            if add_extension(os.path.join(os.path.dirname(path), stem)) == path:
                return str(int(number))
        except FileNotFoundError:
            pass
    return filename
