"""Evaluation on Labeled Faces in the Wild pairs (the original lfw module), for any pairs file.

A pairs file has a header line `nrof_folds nrof_pairs`, then one pair per line: `name i j` (two
images of one identity) or `name1 i name2 j` (two identities), as LFW's pairs.txt. A numeric
field i names the LFW-style file `name/name_%04d` (.jpg or .png); any other field names a file
(with or without its extension) in the identity's folder, which is how generate_pairs.py refers
to datasets whose files are not numbered the LFW way.
"""
import logging
import os

import numpy as np

from facenet_tf2.images import IMAGE_EXTENSIONS
from facenet_tf2.metrics import ROC_THRESHOLDS, VAL_THRESHOLDS, FAR_TARGET, calculate_roc, calculate_val, \
    evaluate_verification

log = logging.getLogger(__name__)

# The original looked for .jpg, then .png; other image types come after, so LFW resolves as before.
PAIR_IMAGE_EXTENSIONS = ('.jpg', '.png') + tuple(ext for ext in IMAGE_EXTENSIONS if ext not in ('.jpg', '.png'))


def evaluate(embeddings, actual_issame, nrof_folds=10, distance_metric=0, subtract_mean=False):
    """(tpr, fpr, accuracy, val, val_std, far) for pairs (embeddings[2k], embeddings[2k+1])."""
    embeddings1, embeddings2 = embeddings[0::2], embeddings[1::2]
    tpr, fpr, accuracy = calculate_roc(ROC_THRESHOLDS, embeddings1, embeddings2, np.asarray(actual_issame),
                                       nrof_folds=nrof_folds, distance_metric=distance_metric,
                                       subtract_mean=subtract_mean)
    val, val_std, far = calculate_val(VAL_THRESHOLDS, embeddings1, embeddings2, np.asarray(actual_issame), FAR_TARGET,
                                      nrof_folds=nrof_folds, distance_metric=distance_metric,
                                      subtract_mean=subtract_mean)
    return tpr, fpr, accuracy, val, val_std, far


def evaluate_embeddings(embeddings, actual_issame, nrof_folds=10, distance_metric=0, subtract_mean=False):
    """evaluate's numbers with AUC, EER and per-fold detail, as a metrics.VerificationResult."""
    return evaluate_verification(embeddings[0::2], embeddings[1::2], actual_issame, nrof_folds, distance_metric,
                                 subtract_mean)


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
    return path if os.path.isfile(path) else add_extension(path)


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
    if skipped:
        log.warning('skipped %d image pairs with missing images', len(skipped))
    return path_list, issame_list


def read_pairs(pairs_filename):
    """The pairs of a pairs file (the header line skipped), a 1-D array of lists of fields.

    The original built np.array(pairs) from rows of 3 and 4 fields, which NumPy 2 refuses.
    """
    pairs = []
    with open(pairs_filename, 'r') as f:
        for line_number, line in enumerate(f.readlines()[1:], start=2):
            pair = line.strip().split()
            if not pair:
                continue
            if len(pair) not in (3, 4):
                raise ValueError(f'{pairs_filename}:{line_number}: expected "name i j" or "name1 i name2 j", '
                                 f'got {line.strip()!r}')
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
