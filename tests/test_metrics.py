"""The verification metrics: the reference table reproduced, and each rule checked against a
plain per-threshold transcription of the original algorithm on small synthetic data."""
import json

import numpy as np
import pytest
from PIL import Image
from sklearn.model_selection import KFold

import lfw
from facenet_tf2.evaluation import metrics

# The table of ../shared/reference/README.md: what the original evaluation code printed on the
# original pipeline's LFW embeddings (10 folds).
REFERENCE_TABLE = [
    # distance_metric, subtract_mean, accuracy, validation rate, far, auc, eer
    (0, False, '0.99283 +- 0.00373', '0.96900 +- 0.01469', '0.00100', '0.999', '0.008'),
    (0, True, '0.99283 +- 0.00373', '0.96900 +- 0.01469', '0.00100', '0.999', '0.008'),
    (1, False, '0.99267 +- 0.00382', '0.96833 +- 0.01416', '0.00067', '0.999', '0.008'),
    (1, True, '0.99300 +- 0.00393', '0.97800 +- 0.01127', '0.00067', '0.999', '0.008'),
]


@pytest.fixture(scope='module')
def reference_embeddings(reference_dir):
    data = np.load(reference_dir / 'original_embeddings_20170512-110547_lfw.npz')
    # The original's validate_on_lfw collected the embeddings in a float64 array.
    return data['embeddings'].astype(np.float64), data['issame']


@pytest.mark.parametrize('distance_metric, subtract_mean, accuracy, val, far, auc, eer', REFERENCE_TABLE)
def test_reference_table_reproduced_as_printed(reference_embeddings, distance_metric, subtract_mean, accuracy, val,
                                                far, auc, eer):
    embeddings, issame = reference_embeddings
    result = lfw.evaluate_embeddings(embeddings, issame, 10, distance_metric, subtract_mean)
    assert f'{result.accuracy:2.5f} +- {result.accuracy_std:2.5f}' == accuracy
    assert f'{result.val:2.5f} +- {result.val_std:2.5f}' == val
    assert f'{result.far:2.5f}' == far
    assert f'{result.auc:1.3f}' == auc
    assert f'{result.eer:1.3f}' == eer


def test_lfw_evaluate_is_the_original_composition(reference_embeddings):
    """lfw.evaluate = calculate_roc on thresholds 0:4:0.01 and calculate_val on 0:4:0.001 at FAR 1e-3."""
    embeddings, issame = reference_embeddings
    tpr, fpr, accuracy, val, val_std, far = lfw.evaluate(embeddings, issame, 10, 1, True)
    roc = metrics.calculate_roc(np.arange(0, 4, 0.01), embeddings[0::2], embeddings[1::2], issame, 10, 1, True)
    for ours, expected in zip((tpr, fpr, accuracy), roc):
        np.testing.assert_array_equal(ours, expected)
    assert (val, val_std, far) == metrics.calculate_val(np.arange(0, 4, 0.001), embeddings[0::2], embeddings[1::2],
                                                        issame, 1e-3, 10, 1, True)


def _synthetic_pairs(nrof_pairs=240, embedding_size=16, seed=0):
    """Unit embeddings where same pairs are noisy copies, with some exact duplicates (cosine 1)."""
    rng = np.random.default_rng(seed)
    embeddings1 = rng.normal(size=(nrof_pairs, embedding_size))
    issame = rng.random(nrof_pairs) < 0.5
    noise = rng.normal(size=embeddings1.shape) * np.where(issame, 0.6, 3.0)[:, None]
    embeddings2 = embeddings1 + noise
    embeddings2[:5] = embeddings1[:5]
    issame[:5] = True
    normalise = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    return normalise(embeddings1), normalise(embeddings2), issame


def _oracle_folds(embeddings1, embeddings2, issame, nrof_folds, distance_metric, subtract_mean):
    for train_set, test_set in KFold(n_splits=nrof_folds, shuffle=False).split(np.arange(len(issame))):
        mean = np.mean(np.concatenate([embeddings1[train_set], embeddings2[train_set]]), axis=0) if subtract_mean \
            else 0.0
        x1, x2 = embeddings1 - mean, embeddings2 - mean
        if distance_metric == 0:
            dist = np.sum((x1 - x2) ** 2, axis=1)
        else:
            cosine = np.sum(x1 * x2, axis=1) / (np.linalg.norm(x1, axis=1) * np.linalg.norm(x2, axis=1))
            dist = np.arccos(np.clip(cosine, -1, 1)) / np.pi
        yield train_set, test_set, dist


def _oracle_accuracy(threshold, dist, issame):
    predict = dist < threshold
    tp, fp = np.sum(predict & issame), np.sum(predict & ~issame)
    tn, fn = np.sum(~predict & ~issame), np.sum(~predict & issame)
    return (0 if tp + fn == 0 else tp / (tp + fn)), (0 if fp + tn == 0 else fp / (fp + tn)), (tp + tn) / dist.size


@pytest.mark.parametrize('distance_metric', [0, 1])
@pytest.mark.parametrize('subtract_mean', [False, True])
def test_calculate_roc_matches_per_threshold_loop(distance_metric, subtract_mean):
    embeddings1, embeddings2, issame = _synthetic_pairs()
    thresholds = np.arange(0, 4, 0.01)
    tpr, fpr, accuracy = metrics.calculate_roc(thresholds, embeddings1, embeddings2, issame, 6, distance_metric,
                                               subtract_mean)
    tprs, fprs, expected_accuracy = [], [], []
    for train_set, test_set, dist in _oracle_folds(embeddings1, embeddings2, issame, 6, distance_metric,
                                                    subtract_mean):
        acc_train = [_oracle_accuracy(t, dist[train_set], issame[train_set])[2] for t in thresholds]
        best = thresholds[int(np.argmax(acc_train))]
        rates = [_oracle_accuracy(t, dist[test_set], issame[test_set]) for t in thresholds]
        tprs.append([r[0] for r in rates])
        fprs.append([r[1] for r in rates])
        expected_accuracy.append(_oracle_accuracy(best, dist[test_set], issame[test_set])[2])
    np.testing.assert_array_equal(accuracy, expected_accuracy)
    np.testing.assert_array_equal(tpr, np.mean(tprs, 0))
    np.testing.assert_array_equal(fpr, np.mean(fprs, 0))
    assert 0.5 < np.mean(accuracy) < 1.0  # a task the data makes neither trivial nor hopeless


@pytest.mark.parametrize('distance_metric', [0, 1])
@pytest.mark.parametrize('subtract_mean', [False, True])
def test_calculate_val_matches_per_threshold_loop(distance_metric, subtract_mean):
    embeddings1, embeddings2, issame = _synthetic_pairs()
    thresholds = np.arange(0, 4, 0.001)
    far_target = 0.05
    val, val_std, far = metrics.calculate_val(thresholds, embeddings1, embeddings2, issame, far_target, 6,
                                              distance_metric, subtract_mean)
    vals, fars = [], []
    for train_set, test_set, dist in _oracle_folds(embeddings1, embeddings2, issame, 6, distance_metric,
                                                    subtract_mean):
        same, diff = issame[train_set], ~issame[train_set]
        far_train = np.array([np.sum((dist[train_set] < t) & diff) / np.sum(diff) for t in thresholds])
        far_values, first = np.unique(far_train, return_index=True)
        threshold = np.interp(far_target, far_values, thresholds[first]) if far_train.max() >= far_target else 0.0
        predict = dist[test_set] < threshold
        vals.append(np.sum(predict & issame[test_set]) / np.sum(issame[test_set]))
        fars.append(np.sum(predict & ~issame[test_set]) / np.sum(~issame[test_set]))
        assert np.sum(same) and np.sum(diff)
    assert (val, val_std, far) == (np.mean(vals), np.std(vals), np.mean(fars))
    assert 0 < val < 1 and 0 < far


def test_distance_metrics():
    a = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.6, 0.8]])
    b = np.array([[0.0, 1.0], [-1.0, 0.0], [1.0, 0.0], [0.6, 0.8]])
    np.testing.assert_allclose(metrics.distance(a, b, 0), [2.0, 4.0, 0.0, 0.0])
    np.testing.assert_allclose(metrics.distance(a, b, 1), [0.5, 1.0, 0.0, 0.0], atol=1e-7)
    # A cosine that rounds above 1 gave NaN in the original; it must be the distance 0.
    x = np.array([[0.1, 0.1, 0.3]])  # its cosine with itself rounds to 1.0000000000000002
    assert metrics.distance(x, x, 1)[0] == 0.0
    with pytest.raises(ValueError, match='Undefined distance metric 2'):
        metrics.distance(a, b, 2)


def test_threshold_at_far_keeps_first_threshold_per_far_value():
    thresholds = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    far_train = np.array([0.0, 0.0, 0.0005, 0.0005, 0.002])
    # Between (FAR 0.0005, threshold 2) and (FAR 0.002, threshold 4): 2 + 2 * 0.0005 / 0.0015.
    assert metrics.threshold_at_far(1e-3, far_train, thresholds) == pytest.approx(2 + 2 / 3)
    assert metrics.threshold_at_far(0.0005, far_train, thresholds) == 2.0
    assert metrics.threshold_at_far(0.01, far_train, thresholds) == 0.0  # never reached: 0, as the original


def test_rates_are_zero_without_pairs_of_a_kind():
    dist, issame = np.array([0.1, 0.2]), np.array([False, False])
    assert metrics.calculate_val_far(1.0, dist, issame) == (0.0, 1.0)
    assert metrics.calculate_accuracy(1.0, dist, issame) == (0.0, 1.0, 0.0)


def test_auc_and_eer_of_a_known_curve():
    fpr, tpr = np.array([0.0, 0.5, 1.0]), np.array([0.5, 1.0, 1.0])
    assert metrics.area_under_curve(fpr, tpr) == pytest.approx(0.875)
    assert metrics.equal_error_rate(fpr, tpr) == pytest.approx(0.25)


def test_too_few_pairs_for_the_folds_is_a_clear_error():
    embeddings1, embeddings2, issame = _synthetic_pairs(nrof_pairs=5)
    with pytest.raises(ValueError, match='5 pairs cannot be split into 10 folds'):
        metrics.calculate_roc(metrics.ROC_THRESHOLDS, embeddings1, embeddings2, issame)


def test_result_json_and_roc_plot(tmp_path):
    embeddings1, embeddings2, issame = _synthetic_pairs()
    result = metrics.evaluate_verification(embeddings1, embeddings2, issame, nrof_folds=6, far_target=0.05)
    numbers = json.loads(json.dumps(result.to_dict()))
    assert numbers['accuracy'] == result.accuracy and len(numbers['folds']['accuracy']) == 6
    assert len(numbers['roc']['tpr']) == len(metrics.ROC_THRESHOLDS)
    plot = tmp_path / 'out' / 'roc.png'
    metrics.plot_roc(result, plot)
    with Image.open(plot) as image:
        assert image.format == 'PNG' and image.size == (640, 480)
    assert [p.name for p in plot.parent.iterdir()] == ['roc.png']


def test_flipped_image_embeddings_get_a_whole_roc_curve(reference_embeddings):
    # Concatenated [embedding, embedding] doubles every squared distance, up to 8: the threshold
    # grid (0 to 4) stops at FPR 0.548, where the original's AUC read 0.547 and its EER raised.
    embeddings, issame = reference_embeddings
    single = lfw.evaluate_embeddings(embeddings, issame)
    doubled = lfw.evaluate_embeddings(np.concatenate([embeddings, embeddings], axis=1), issame)
    assert doubled.roc.fpr[-1] < 0.6
    assert doubled.accuracy == single.accuracy
    assert f'{doubled.auc:1.3f} {doubled.eer:1.3f}' == '0.999 0.008'
    np.testing.assert_array_equal(metrics.closed_roc(single.roc.fpr, single.roc.tpr)[0], single.roc.fpr)
