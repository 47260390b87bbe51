"""Face verification metrics: the original's distance, ROC, accuracy and VAL@FAR, plus AUC/EER.

The functions under the original names (`distance`, `calculate_roc`, `calculate_accuracy`,
`calculate_val`, `calculate_val_far`) keep the original's numbers: contiguous 10-fold
cross-validation without shuffling, the best threshold chosen on the training folds (first
argmax), the mean subtracted from the training folds' embeddings, `dist < threshold` meaning
"same". Counting is done for all thresholds at once on sorted distances, which gives exactly the
counts of the original's per-threshold loop in a fraction of its time.

Fixes, each also noted where it happens: the angular distance clips the cosine similarity to
[-1, 1] so rounding never gives NaN; VAL's threshold is interpolated with the rule of
../shared/reference/README.md, because the original's `interp1d(kind='slinear')` rejects the
repeated FAR values that every LFW run has on current SciPy; AUC and EER use the ROC curve closed
at (1, 1), which the original's grid misses for distances above 4 (flipped-image embeddings).
"""
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq
from sklearn import metrics as sklearn_metrics
from sklearn.model_selection import KFold

from facenet_tf2.files import atomic_path

# The threshold grids and FAR target of the original lfw.evaluate.
ROC_THRESHOLDS = np.arange(0, 4, 0.01)
VAL_THRESHOLDS = np.arange(0, 4, 0.001)
FAR_TARGET = 1e-3


def distance(embeddings1, embeddings2, distance_metric=0):
    """Row-wise distance: 0 = squared Euclidean, 1 = arccos(cosine similarity) / pi in [0, 1]."""
    if distance_metric == 0:
        diff = np.subtract(embeddings1, embeddings2)
        return np.sum(np.square(diff), 1)
    if distance_metric == 1:
        dot = np.sum(np.multiply(embeddings1, embeddings2), axis=1)
        norm = np.linalg.norm(embeddings1, axis=1) * np.linalg.norm(embeddings2, axis=1)
        # The original took arccos of dot / norm unclipped: a rounding error above 1 (identical
        # images) gave NaN, which then counted as "different" at every threshold.
        similarity = np.clip(dot / norm, -1.0, 1.0)
        return np.arccos(similarity) / math.pi
    # The original raised a bare string here, itself a TypeError on Python 3.
    raise ValueError(f'Undefined distance metric {distance_metric} (use 0: squared Euclidean, 1: angular)')


def _count_accepts(threshold, dist, actual_issame):
    """Numbers of same and different pairs with dist < threshold, and the totals of each.

    threshold may be a scalar or an array (counts per threshold). Searching the sorted distances
    counts exactly what np.less(dist, threshold) does, NaN included (it sorts last, never less).
    """
    dist = np.asarray(dist)
    actual_issame = np.asarray(actual_issame, dtype=bool)
    same = np.sort(dist[actual_issame])
    diff = np.sort(dist[~actual_issame])
    true_accept = np.searchsorted(same, threshold, side='left')
    false_accept = np.searchsorted(diff, threshold, side='left')
    return true_accept, false_accept, same.size, diff.size


def _rate(count, total):
    """count / total as float64, 0 where total is 0 (the original's convention for TPR and FPR)."""
    count, total = np.asarray(count, np.float64), np.asarray(total, np.float64)
    rate = np.divide(count, total, out=np.zeros(np.broadcast(count, total).shape), where=total > 0)
    return rate if rate.ndim else float(rate)


def calculate_accuracy(threshold, dist, actual_issame):
    """(tpr, fpr, accuracy) of predicting "same" where dist < threshold.

    threshold may also be an array: the three results are then arrays, one entry per threshold.
    """
    tp, fp, n_same, n_diff = _count_accepts(threshold, dist, actual_issame)
    tn = n_diff - fp
    return _rate(tp, n_same), _rate(fp, n_diff), _rate(tp + tn, np.asarray(dist).size)


def calculate_val_far(threshold, dist, actual_issame):
    """(val, far): the fractions of same pairs accepted and of different pairs accepted.

    A fold without same (or different) pairs gives 0 where the original divided by zero.
    """
    true_accept, false_accept, n_same, n_diff = _count_accepts(threshold, dist, actual_issame)
    return _rate(true_accept, n_same), _rate(false_accept, n_diff)


def _fold_distances(embeddings1, embeddings2, actual_issame, nrof_folds, distance_metric, subtract_mean):
    """Yields (train_set, test_set, dist) per fold of the original's contiguous KFold.

    With subtract_mean the mean of the fold's training embeddings (both sides of each pair) is
    subtracted before the distance, as in the original; otherwise one distance serves all folds.
    """
    embeddings1, embeddings2 = np.asarray(embeddings1), np.asarray(embeddings2)
    actual_issame = np.asarray(actual_issame, dtype=bool)
    if embeddings1.ndim != 2 or embeddings1.shape != embeddings2.shape:
        raise ValueError(f'embeddings1 {embeddings1.shape} and embeddings2 {embeddings2.shape} must be two '
                         f'[nrof_pairs, embedding_size] arrays of the same shape')
    nrof_pairs = min(len(actual_issame), embeddings1.shape[0])
    if nrof_pairs < nrof_folds:
        raise ValueError(f'{nrof_pairs} pairs cannot be split into {nrof_folds} folds')
    k_fold = KFold(n_splits=nrof_folds, shuffle=False)
    dist = None if subtract_mean else distance(embeddings1, embeddings2, distance_metric)
    for train_set, test_set in k_fold.split(np.arange(nrof_pairs)):
        if subtract_mean:
            mean = np.mean(np.concatenate([embeddings1[train_set], embeddings2[train_set]]), axis=0)
            dist = distance(embeddings1 - mean, embeddings2 - mean, distance_metric)
        yield train_set, test_set, dist


@dataclass
class RocFolds:
    """calculate_roc's per-fold detail: the fold-mean ROC curve over `thresholds`, and per test
    fold the accuracy, TPR and FPR at the threshold chosen on its training folds."""
    thresholds: np.ndarray
    tpr: np.ndarray
    fpr: np.ndarray
    accuracy: np.ndarray
    best_thresholds: np.ndarray
    test_tpr: np.ndarray
    test_fpr: np.ndarray


def roc_folds(thresholds, embeddings1, embeddings2, actual_issame, nrof_folds=10, distance_metric=0,
              subtract_mean=False):
    thresholds = np.asarray(thresholds)
    actual_issame = np.asarray(actual_issame, dtype=bool)
    tprs = np.zeros((nrof_folds, len(thresholds)))
    fprs = np.zeros((nrof_folds, len(thresholds)))
    accuracy, best_thresholds = np.zeros(nrof_folds), np.zeros(nrof_folds)
    test_tpr, test_fpr = np.zeros(nrof_folds), np.zeros(nrof_folds)
    folds = _fold_distances(embeddings1, embeddings2, actual_issame, nrof_folds, distance_metric, subtract_mean)
    for fold_idx, (train_set, test_set, dist) in enumerate(folds):
        _, _, acc_train = calculate_accuracy(thresholds, dist[train_set], actual_issame[train_set])
        best_thresholds[fold_idx] = thresholds[np.argmax(acc_train)]
        tprs[fold_idx], fprs[fold_idx], _ = calculate_accuracy(thresholds, dist[test_set], actual_issame[test_set])
        test_tpr[fold_idx], test_fpr[fold_idx], accuracy[fold_idx] = calculate_accuracy(
            best_thresholds[fold_idx], dist[test_set], actual_issame[test_set])
    return RocFolds(thresholds, np.mean(tprs, 0), np.mean(fprs, 0), accuracy, best_thresholds, test_tpr, test_fpr)


def calculate_roc(thresholds, embeddings1, embeddings2, actual_issame, nrof_folds=10, distance_metric=0,
                  subtract_mean=False):
    """(tpr, fpr, accuracy): the fold-mean ROC curve over thresholds and the per-fold accuracy at
    the threshold that maximises accuracy on the other folds."""
    roc = roc_folds(thresholds, embeddings1, embeddings2, actual_issame, nrof_folds, distance_metric, subtract_mean)
    return roc.tpr, roc.fpr, roc.accuracy


def threshold_at_far(far_target, far_train, thresholds):
    """The threshold where the training FAR reaches far_target, interpolated linearly.

    For each distinct FAR value the first (smallest) threshold reaching it is kept, then the
    curve is interpolated: the rule the reference figures use. The original's
    interp1d(far_train, thresholds, kind='slinear') saw every threshold, but current SciPy
    rejects the repeated FAR values it always has. As in the original, a target the training
    folds never reach gives threshold 0.
    """
    if np.max(far_train) < far_target:
        return 0.0
    far_values, first_index = np.unique(far_train, return_index=True)
    return float(np.interp(far_target, far_values, np.asarray(thresholds)[first_index]))


@dataclass
class ValFolds:
    """calculate_val's per-fold detail: VAL and FAR on each test fold at the threshold
    interpolated to far_target on its training folds."""
    val: np.ndarray
    far: np.ndarray
    thresholds: np.ndarray


def val_folds(thresholds, embeddings1, embeddings2, actual_issame, far_target, nrof_folds=10, distance_metric=0,
              subtract_mean=False):
    actual_issame = np.asarray(actual_issame, dtype=bool)
    val, far, fold_thresholds = np.zeros(nrof_folds), np.zeros(nrof_folds), np.zeros(nrof_folds)
    folds = _fold_distances(embeddings1, embeddings2, actual_issame, nrof_folds, distance_metric, subtract_mean)
    for fold_idx, (train_set, test_set, dist) in enumerate(folds):
        _, far_train = calculate_val_far(thresholds, dist[train_set], actual_issame[train_set])
        fold_thresholds[fold_idx] = threshold_at_far(far_target, far_train, thresholds)
        val[fold_idx], far[fold_idx] = calculate_val_far(fold_thresholds[fold_idx], dist[test_set],
                                                         actual_issame[test_set])
    return ValFolds(val, far, fold_thresholds)


def calculate_val(thresholds, embeddings1, embeddings2, actual_issame, far_target, nrof_folds=10, distance_metric=0,
                  subtract_mean=False):
    """(val_mean, val_std, far_mean) over the test folds at the training folds' FAR = far_target."""
    folds = val_folds(thresholds, embeddings1, embeddings2, actual_issame, far_target, nrof_folds, distance_metric,
                      subtract_mean)
    return np.mean(folds.val), np.std(folds.val), np.mean(folds.far)


def closed_roc(fpr, tpr):
    """The ROC curve from (0, 0) to (1, 1), its ends (no pair accepted, every pair accepted)
    added where the thresholds stop short of them.

    The original's fixed grid (0 to 4) stops short when distances exceed 4, as the squared
    distances of --use_flipped_images embeddings (up to 8) do: its AUC then came out far too
    small (0.547 instead of 0.999 on LFW) and its EER raised a ValueError.
    """
    fpr, tpr = np.asarray(fpr, np.float64), np.asarray(tpr, np.float64)
    if (fpr[0], tpr[0]) != (0.0, 0.0):
        fpr, tpr = np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])
    if (fpr[-1], tpr[-1]) != (1.0, 1.0):
        fpr, tpr = np.concatenate([fpr, [1.0]]), np.concatenate([tpr, [1.0]])
    return fpr, tpr


def area_under_curve(fpr, tpr):
    """AUC of the (closed) ROC curve, as the original computed it (sklearn.metrics.auc)."""
    return float(sklearn_metrics.auc(*closed_roc(fpr, tpr)))


def equal_error_rate(fpr, tpr):
    """The FPR where FPR = 1 - TPR on the piecewise-linear (closed) ROC curve (brentq, as the original)."""
    fpr, tpr = closed_roc(fpr, tpr)
    return float(brentq(lambda x: 1.0 - x - np.interp(x, fpr, tpr), 0.0, 1.0))


@dataclass
class VerificationResult:
    """Everything validate_on_lfw reports about one evaluation of pairs: the original's summary
    (accuracy and VAL as mean +- std over the test folds, mean FAR, AUC, EER) and the detail."""
    nrof_pairs: int
    nrof_folds: int
    distance_metric: int
    subtract_mean: bool
    roc: RocFolds
    val_folds: ValFolds
    far_target: float
    accuracy: float = field(init=False)
    accuracy_std: float = field(init=False)
    val: float = field(init=False)
    val_std: float = field(init=False)
    far: float = field(init=False)
    auc: float = field(init=False)
    eer: float = field(init=False)

    def __post_init__(self):
        self.accuracy, self.accuracy_std = float(np.mean(self.roc.accuracy)), float(np.std(self.roc.accuracy))
        self.val, self.val_std = float(np.mean(self.val_folds.val)), float(np.std(self.val_folds.val))
        self.far = float(np.mean(self.val_folds.far))
        self.auc = area_under_curve(self.roc.fpr, self.roc.tpr)
        self.eer = equal_error_rate(self.roc.fpr, self.roc.tpr)

    def to_dict(self):
        """All numbers as JSON-ready Python types."""
        summary = ('nrof_pairs', 'nrof_folds', 'distance_metric', 'subtract_mean', 'accuracy', 'accuracy_std', 'val',
                   'val_std', 'far', 'far_target', 'auc', 'eer')
        return {
            **{name: getattr(self, name) for name in summary},
            'folds': {
                'accuracy': self.roc.accuracy.tolist(),
                'best_threshold': self.roc.best_thresholds.tolist(),
                'tpr_at_best_threshold': self.roc.test_tpr.tolist(),
                'fpr_at_best_threshold': self.roc.test_fpr.tolist(),
                'val': self.val_folds.val.tolist(),
                'far': self.val_folds.far.tolist(),
                'val_threshold': self.val_folds.thresholds.tolist(),
            },
            'roc': {'thresholds': self.roc.thresholds.tolist(), 'tpr': self.roc.tpr.tolist(),
                    'fpr': self.roc.fpr.tolist()},
        }


def evaluate_verification(embeddings1, embeddings2, actual_issame, nrof_folds=10, distance_metric=0,
                          subtract_mean=False, far_target=FAR_TARGET):
    """A VerificationResult for the pairs (embeddings1[k], embeddings2[k]) labelled actual_issame:
    k-fold accuracy and threshold, validation rate at far_target, AUC, EER and the per-fold detail.

    Fidelity: the folds, thresholds and figures are the original lfw.evaluate's."""
    roc = roc_folds(ROC_THRESHOLDS, embeddings1, embeddings2, actual_issame, nrof_folds, distance_metric,
                    subtract_mean)
    val = val_folds(VAL_THRESHOLDS, embeddings1, embeddings2, actual_issame, far_target, nrof_folds, distance_metric,
                    subtract_mean)
    nrof_pairs = min(len(actual_issame), len(embeddings1))
    return VerificationResult(nrof_pairs, nrof_folds, distance_metric, bool(subtract_mean), roc, val, far_target)


def plot_roc(result, filename, title=None):
    """Writes the fold-mean ROC curve (log FPR axis) with the accuracy and VAL@FAR operating points
    marked: each the mean over test folds at the thresholds chosen on the training folds."""
    from matplotlib.figure import Figure  # only the plot needs matplotlib; no pyplot, no display

    roc = result.roc
    fpr, tpr = closed_roc(roc.fpr, roc.tpr)
    points_fpr = np.concatenate([fpr, roc.test_fpr, result.val_folds.far])
    # A log axis cannot show FPR 0: start it half a step below the smallest FPR measured.
    fpr_floor = 0.5 * (np.min(points_fpr[points_fpr > 0]) if np.any(points_fpr > 0) else 1e-4)
    figure = Figure(figsize=(6.4, 4.8))
    axes = figure.add_subplot()
    axes.plot(np.maximum(fpr, fpr_floor), tpr, color='C0',
              label=f'ROC (AUC {result.auc:.3f}, EER {result.eer:.3f})')
    axes.plot(max(float(np.mean(roc.test_fpr)), fpr_floor), float(np.mean(roc.test_tpr)), 'o', color='C1',
              label=f'accuracy {result.accuracy:.5f} +- {result.accuracy_std:.5f}')
    axes.plot(max(result.far, fpr_floor), result.val, 's', color='C2',
              label=f'VAL {result.val:.5f} +- {result.val_std:.5f} @ FAR {result.far:.5f}')
    axes.set_xscale('log')
    axes.set_xlim(fpr_floor, 1.0)
    axes.set_xlabel('False accept rate (FPR)')
    axes.set_ylabel('True accept rate (TPR)')
    axes.set_title(title or f'ROC, {result.nrof_pairs} pairs, {result.nrof_folds} folds, '
                            f'distance metric {result.distance_metric}')
    axes.grid(True, which='both', alpha=0.3)
    axes.legend(loc='lower right')
    with atomic_path(filename) as temporary:
        figure.savefig(temporary, dpi=100)
