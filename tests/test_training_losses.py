"""Loss terms and classifier heads of facenet_tf2.training.losses against direct NumPy formulas,
and against the original train_softmax.py's values for a real batch (../shared/reference)."""
import json
import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT
from facenet_tf2.nets.layers import original_name
from facenet_tf2.training import losses

RNG = np.random.default_rng(20170512)


def _np_cross_entropy(labels, logits):
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_softmax[np.arange(len(labels)), labels]


def test_cross_entropy_and_accuracy_hand_made():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 5.0], [1.0, 1.0, -1.0]], np.float32)
    labels = np.array([0, 1, 1])
    expected = np.mean([-math.log(math.e ** 2 / (math.e ** 2 + 2)), -math.log(1 / (2 + math.e ** 5)),
                        -math.log(math.e / (2 * math.e + math.e ** -1))])
    assert float(losses.softmax_cross_entropy(labels, logits)) == pytest.approx(expected, rel=1e-6)
    # Row 2 ties classes 0 and 1: argmax takes the first, so only row 0 is right.
    assert float(losses.accuracy(labels, logits)) == pytest.approx(1 / 3)


def test_cross_entropy_and_accuracy_random():
    logits = RNG.normal(scale=3.0, size=(40, 7)).astype(np.float32)
    labels = RNG.integers(0, 7, size=40)
    assert float(losses.softmax_cross_entropy(labels[:, None], logits)) == pytest.approx(
        _np_cross_entropy(labels, logits).mean(), rel=1e-6)
    assert float(losses.accuracy(labels, logits)) == pytest.approx(np.mean(logits.argmax(axis=1) == labels))


def test_global_batch_size_halves_add_up_to_the_mean():
    logits = RNG.normal(size=(10, 4)).astype(np.float32)
    labels = RNG.integers(0, 4, size=10)
    prelogits = RNG.normal(size=(10, 6)).astype(np.float32)
    centers = RNG.normal(size=(4, 6)).astype(np.float32)
    halves = (slice(0, 3), slice(3, 10))  # unequal replica batches
    for term, args in ((losses.softmax_cross_entropy, (labels, logits)), (losses.accuracy, (labels, logits)),
                       (lambda p, g=None: losses.prelogits_norm(p, 1.0, g), (prelogits,)),
                       (lambda f, y, g=None: losses.center_loss(f, y, centers, 0.9, g)[0], (prelogits, labels))):
        whole = float(term(*args))
        parts = sum(float(term(*(a[half] for a in args), 10)) for half in halves)
        assert parts == pytest.approx(whole, rel=1e-6)


@pytest.mark.parametrize('p', [1.0, 2.0, 1.5])
def test_prelogits_norm(p):
    prelogits = RNG.normal(size=(16, 12)).astype(np.float32)
    expected = np.mean(np.sum((np.abs(prelogits.astype(np.float64)) + 1e-4) ** p, axis=1) ** (1 / p))
    assert float(losses.prelogits_norm(prelogits, p)) == pytest.approx(expected, rel=1e-6)
    # The epsilon is there: an all-zero row has norm 1e-4 * D**(1/p), not 0.
    assert float(losses.prelogits_norm(np.zeros((1, 12), np.float32), p)) == pytest.approx(1e-4 * 12 ** (1 / p),
                                                                                          rel=1e-5)


def test_center_loss_and_update_with_duplicate_labels():
    features = RNG.normal(size=(6, 5)).astype(np.float32)
    labels = np.array([2, 0, 2, 2, 1, 0], np.int32)
    start = RNG.normal(size=(4, 5)).astype(np.float32)
    alfa = 0.7
    layer = losses.CenterLoss(4, 5, alfa)
    layer.centers.assign(start)
    loss, delta = layer(features, labels)
    assert isinstance(delta, tf.IndexedSlices)
    np.testing.assert_array_equal(delta.indices.numpy(), labels)
    # The loss uses the centres before the update.
    assert float(loss) == pytest.approx(np.mean((features - start[labels]) ** 2), rel=1e-6)
    layer.apply_update(delta)
    expected = start.astype(np.float64).copy()
    for feature, label in zip(features, labels):  # each occurrence moves its centre, from the old centre
        expected[label] -= (1 - alfa) * (start[label] - feature)
    np.testing.assert_allclose(layer.centers.numpy(), expected, rtol=1e-6, atol=1e-6)
    # Class 3 is not in the batch and stays where it was.
    np.testing.assert_array_equal(layer.centers.numpy()[3], start[3])


def test_center_loss_gradient_reaches_the_centres_sparsely():
    features = RNG.normal(size=(4, 3)).astype(np.float32)
    labels = np.array([1, 1, 0, 2], np.int32)
    layer = losses.CenterLoss(5, 3, 0.95)
    layer.centers.assign(RNG.normal(size=(5, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(layer.centers.value)
        loss, _ = layer(features, labels)
    gradient = tape.gradient(loss, layer.centers)
    assert isinstance(gradient, tf.IndexedSlices)
    dense = tf.convert_to_tensor(gradient).numpy()
    expected = np.zeros((5, 3))
    for feature, label in zip(features, labels):
        expected[label] += -2 * (feature - layer.centers.numpy()[label]) / features.size
    np.testing.assert_allclose(dense, expected, rtol=1e-5, atol=1e-7)


def test_variable_names_map_to_the_original():
    features = tf.zeros((2, 8))
    softmax = losses.make_classifier_head('softmax', 3, 5e-4)
    softmax(features)
    assert [original_name('', v.path) for v in softmax.weights] == ['Logits/weights', 'Logits/biases']
    for loss in ('arcface', 'cosface'):
        head = losses.make_classifier_head(loss, 3, 5e-4)
        head(features)
        assert [(original_name('', v.path), tuple(v.shape)) for v in head.weights] == [('Logits/weights', (8, 3))]
    assert losses.CenterLoss(3, 8, 0.9).centers.path == 'centers'


def test_softmax_head_is_the_original_logits_layer():
    head = losses.make_classifier_head('softmax', 4, 5e-4)
    assert isinstance(head, losses.SoftmaxHead)
    prelogits = RNG.normal(size=(3, 6)).astype(np.float32)
    logits = head(prelogits, labels=np.array([0, 1, 2]))
    np.testing.assert_array_equal(head.bias.numpy(), 0.0)
    np.testing.assert_allclose(logits.numpy(), prelogits @ head.kernel.numpy(), rtol=1e-5, atol=1e-6)
    # slim's weight decay, half of Keras' L2; the bias is not regularised.
    assert len(head.losses) == 1
    assert float(head.losses[0]) == pytest.approx(5e-4 * np.sum(head.kernel.numpy().astype(np.float64) ** 2) / 2,
                                                  rel=1e-5)


def test_make_classifier_head_margins_and_refusals():
    arcface = losses.make_classifier_head('arcface', 10, 0.0)
    cosface = losses.make_classifier_head('cosface', 10, 0.0, margin_m=0.2)
    assert (type(arcface), arcface.margin_s, arcface.margin_m) == (losses.ArcFaceHead, 64.0, 0.5)
    assert (type(cosface), cosface.margin_s, cosface.margin_m) == (losses.CosFaceHead, 64.0, 0.2)
    with pytest.raises(ValueError, match='margin_s and --margin_m apply to --loss arcface or cosface'):
        losses.make_classifier_head('softmax', 10, 0.0, margin_s=30.0)
    with pytest.raises(ValueError, match="unknown loss 'sphereface'"):
        losses.make_classifier_head('sphereface', 10, 0.0)


def _unit(angle):
    return np.array([math.cos(angle), math.sin(angle)])


def _head_at_angles(loss, class_angles, feature_angles, **margins):
    """A head in 2-D whose class weights and features sit at the given angles (feature lengths
    vary, as unnormalised prelogits do)."""
    head = losses.make_classifier_head(loss, len(class_angles), 0.0, **margins)
    features = np.stack([(1 + i) * _unit(a) for i, a in enumerate(feature_angles)]).astype(np.float32)
    head.build(features.shape)
    head.kernel.assign(np.stack([3.0 * _unit(a) for a in class_angles], axis=1).astype(np.float32))
    return head, features


def _np_margin_logits(loss, cos, labels, s, m):
    """The direct formulas in float64, on cos kept inside the float32 [-1 + eps, 1 - eps] as the
    heads do."""
    bounds = np.float32([-1 + losses.COS_EPSILON, 1 - losses.COS_EPSILON]).astype(np.float64)
    cos = np.clip(cos.astype(np.float64), *bounds)
    out = cos.copy()
    rows = np.arange(len(labels))
    target = cos[rows, labels]
    if loss == 'cosface':
        out[rows, labels] = target - m
    else:
        theta = np.arccos(target)
        out[rows, labels] = np.where(theta + m <= math.pi, np.cos(theta + m), target - m * math.sin(m))
    return s * out


@pytest.mark.parametrize('loss', ['arcface', 'cosface'])
def test_margin_heads_random_against_direct_formula(loss):
    head = losses.make_classifier_head(loss, 9, 0.0)
    features = RNG.normal(size=(20, 16)).astype(np.float32)
    labels = RNG.integers(0, 9, size=20)
    logits = head(features, labels=labels).numpy()
    weights = head.kernel.numpy().astype(np.float64)
    cos = (features / np.linalg.norm(features, axis=1, keepdims=True)) @ (weights / np.linalg.norm(weights, axis=0))
    np.testing.assert_allclose(logits, _np_margin_logits(loss, cos, labels, head.margin_s, head.margin_m),
                               rtol=1e-5, atol=64 * 2e-6)
    # Without labels (evaluation, inference): s * cos everywhere.
    np.testing.assert_allclose(head(features).numpy(), head.margin_s * cos, rtol=1e-5, atol=64 * 2e-6)


# Feature angles relative to class 0 at angle 0: exactly on it (cos = +1), just off it, a right
# angle, theta + m just past pi (m = 0.5), just short of pi, exactly opposite (cos = -1).
EDGE_ANGLES = [0.0, 1e-4, math.pi / 2, math.pi - 0.4, math.pi - 1e-4, math.pi]


@pytest.mark.parametrize('loss', ['arcface', 'cosface'])
def test_margin_heads_at_the_edges_are_finite_with_finite_gradients(loss):
    head, features = _head_at_angles(loss, [0.0, math.pi / 3, -2.0], EDGE_ANGLES)
    labels = np.zeros(len(EDGE_ANGLES), np.int32)
    features = tf.constant(features)
    with tf.GradientTape() as tape:
        tape.watch(features)
        logits = head(features, labels=labels)
        loss_value = losses.softmax_cross_entropy(labels, logits)
    feature_gradient, kernel_gradient = tape.gradient(loss_value, [features, head.kernel])
    for value in (logits, loss_value, feature_gradient, kernel_gradient):
        assert np.all(np.isfinite(value.numpy()))
    cos = np.cos(np.array(EDGE_ANGLES)[:, None] - np.array([0.0, math.pi / 3, -2.0])[None, :])
    np.testing.assert_allclose(logits.numpy(), _np_margin_logits(loss, cos, labels, head.margin_s, head.margin_m),
                               rtol=1e-5, atol=64 * 1e-5)


def test_arcface_target_logit_on_both_sides_of_the_threshold():
    m = 0.5
    thetas = [0.0, 0.3, math.pi - m - 0.01, math.pi - m + 0.01, math.pi - 0.2, math.pi]
    head, features = _head_at_angles('arcface', [0.0, 1.0], thetas, margin_s=1.0, margin_m=m)
    target = head(features, labels=np.zeros(len(thetas), np.int32)).numpy()[:, 0]
    # The limits the clipped cos stays within: cos(m) at theta = 0, -1 - m*sin(m) at theta = pi.
    expected = [math.cos(m), math.cos(0.3 + m), math.cos(math.pi - 0.01), math.cos(math.pi - m + 0.01) - m * math.sin(m),
                math.cos(math.pi - 0.2) - m * math.sin(m), -1 - m * math.sin(m)]
    np.testing.assert_allclose(target, expected, atol=5e-4)
    # The target logit falls all the way to pi, including across the threshold.
    assert np.all(np.diff(target) < 0)


def test_easy_margin_applies_only_where_cos_is_positive():
    head = losses.ArcFaceHead(2, margin_s=1.0, margin_m=0.5, easy_margin=True)
    features = np.stack([_unit(0.3), _unit(2.0)]).astype(np.float32)
    head.build(features.shape)
    head.kernel.assign(np.stack([_unit(0.0), _unit(1.0)], axis=1).astype(np.float32))
    target = head(features, labels=np.zeros(2, np.int32)).numpy()[:, 0]
    np.testing.assert_allclose(target, [math.cos(0.8), math.cos(2.0)], atol=1e-6)


@pytest.mark.parametrize('loss', losses.LOSSES)
def test_heads_compute_in_float32_under_mixed_precision(loss):
    keras.mixed_precision.set_global_policy('mixed_bfloat16')
    try:
        head = losses.make_classifier_head(loss, 4, 0.0)
    finally:
        keras.mixed_precision.set_global_policy('float32')
    features = RNG.normal(size=(3, 8)).astype(np.float32)
    logits = head(features, labels=np.array([0, 1, 3]))
    assert logits.dtype == tf.float32 and head.kernel.dtype == 'float32'
    reference = losses.make_classifier_head(loss, 4, 0.0)
    reference.build(features.shape)
    reference.set_weights(head.get_weights())
    np.testing.assert_allclose(logits.numpy(), reference(features, labels=np.array([0, 1, 3])).numpy(), rtol=1e-6)


def test_heads_trace_once_in_a_tf_function():
    head = losses.make_classifier_head('arcface', 5, 5e-4)
    head.build((None, 8))  # variables created inside the first trace would force a second one
    center = losses.CenterLoss(5, 8, 0.9)
    traces = []

    @tf.function
    def step(features, labels):
        traces.append(1)
        logits = head(features, labels=labels)
        center_value, delta = center(features, labels, global_batch_size=8)
        center.apply_update(delta)
        return losses.softmax_cross_entropy(labels, logits, 8) + center_value

    for _ in range(3):
        value = step(tf.constant(RNG.normal(size=(8, 8)), tf.float32), tf.constant(RNG.integers(0, 5, 8), tf.int32))
        assert np.isfinite(value.numpy())
    assert len(traces) == 1


@pytest.fixture(scope='module')
def reference(reference_dir):
    folder = reference_dir / 'train_softmax'
    with open(folder / 'reference_adagrad.json') as f:
        meta = json.load(f)
    return meta, np.load(folder / 'reference_adagrad.npz')


def test_reference_step1_loss_terms(reference):
    meta, arrays = reference
    config, step = meta['config'], meta['steps'][0]
    prelogits, logits, labels = arrays['step1/prelogits'], arrays['step1/logits'], arrays['labels']
    center = losses.CenterLoss(meta['nrof_classes'], config['embedding_size'], config['center_loss_alfa'])
    center_value, delta = center(prelogits, labels)
    got = {'cross_entropy_mean': losses.softmax_cross_entropy(labels, logits),
           'accuracy': losses.accuracy(labels, logits),
           'prelogits_norm': losses.prelogits_norm(prelogits, config['prelogits_norm_p']),
           'center_loss': center_value}
    for key, value in got.items():
        assert float(value) == pytest.approx(step[key], rel=1e-6, abs=1e-7), key
    # The original's centres after step 1: the scatter_sub from zero (the Adagrad step it also
    # took on them is zero with center_loss_factor 0).
    center.apply_update(delta)
    np.testing.assert_allclose(center.centers.numpy(), arrays['after_step1/centers'], rtol=1e-6, atol=1e-6)


def test_mirrored_replicas_give_the_single_device_terms_and_centres():
    """Two logical CPU devices (a fresh process: they must exist before TensorFlow starts)."""
    script = textwrap.dedent('''
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices('CPU')[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from facenet_tf2.training import losses
        rng = np.random.default_rng(1)
        features = rng.normal(size=(10, 4)).astype(np.float32)
        labels = np.array([0, 1, 1, 2, 2, 2, 0, 1, 2, 2], np.int32)
        start = rng.normal(size=(3, 4)).astype(np.float32)
        strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
        with strategy.scope():
            center = losses.CenterLoss(3, 4, 0.8)
            head = losses.make_classifier_head('cosface', 3, 0.0)
            head.build((None, 4))
        center.centers.assign(start)
        single_center = losses.CenterLoss(3, 4, 0.8)
        single_center.centers.assign(start)
        single_head = losses.make_classifier_head('cosface', 3, 0.0)
        single_head.build((None, 4))
        single_head.kernel.assign(head.kernel.numpy())
        data = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((features, labels)).batch(10))

        @tf.function
        def step(batch):
            def replica(x, y):
                center_value, delta = center(x, y, global_batch_size=10)
                center.apply_update(tf.distribute.get_replica_context().all_reduce('sum', delta))
                return losses.softmax_cross_entropy(y, head(x, labels=y), 10), center_value
            return [strategy.reduce('sum', t, axis=None) for t in strategy.run(replica, args=batch)]

        xent, center_value = step(next(iter(data)))
        single_value, delta = single_center(features, labels)
        single_center.apply_update(delta)
        single_xent = losses.softmax_cross_entropy(labels, single_head(features, labels=labels))
        print(abs(float(xent) / float(single_xent) - 1), abs(float(center_value) / float(single_value) - 1))
        for replica_centers in center.centers.value.values:
            print(np.abs(replica_centers.numpy() - single_center.centers.numpy()).max())
        ''')
    env = {**os.environ, 'PYTHONPATH': str(REPO_ROOT / 'src'), 'TF_CPP_MIN_LOG_LEVEL': '2'}
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.split('\n')
    xent_error, center_error = map(float, lines[-4].split())
    assert xent_error < 1e-6 and center_error < 1e-6
    replica_errors = [float(line) for line in lines[-3:-1]]
    assert replica_errors == [pytest.approx(0.0, abs=1e-6)] * 2
