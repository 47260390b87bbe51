"""The Keras networks of models/: the original architectures, variable names and training behaviour."""
import collections

import keras
import numpy as np
import pytest

from facenet_tf2 import weights
from facenet_tf2.inference import fold_batch_norm
from models import dummy, inception_resnet_v1, inception_resnet_v2, squeezenet


@pytest.fixture(scope='module')
def v2():
    return inception_resnet_v2.build_model(image_size=None, dropout_keep_prob=1.0)


def shapes(model):
    return {name: tuple(value.shape) for name, value in weights.model_weights(model).items()}


def test_inception_resnet_v1_has_exactly_the_variables_of_the_original_frozen_graph(frozen_model_pb):
    original = weights.frozen_graph_weights(weights.read_graph_def(str(frozen_model_pb)))
    assert shapes(inception_resnet_v1.build_model()) == {name: value.shape for name, value in original.items()}


def test_inception_resnet_v1_end_points():
    model = inception_resnet_v1.build_model(end_points=True)
    sides = {name: tuple(output.shape[1:]) for name, output in model.output.items()}
    assert sides['Conv2d_1a_3x3'] == (79, 79, 32)
    assert sides['Conv2d_4b_3x3'] == (17, 17, 256)
    assert sides['Mixed_6a'] == (8, 8, 896)
    assert sides['Mixed_7a'] == (3, 3, 1792)
    assert sides['PrePool'] == (3, 3, 1792)
    assert sides['PreLogitsFlatten'] == (1792,)
    assert sides['prelogits'] == (128,)


def test_inception_resnet_v2_matches_the_keras_application_layer_for_layer(v2):
    """Keras' own InceptionResNetV2 follows the same slim definition (BatchNorm without scale,
    biased 'up' convolutions): the same weight shapes, plus our Bottleneck."""
    names = shapes(v2)
    ours = collections.Counter(names.values())
    application = keras.applications.InceptionResNetV2(include_top=False, weights=None, input_shape=(160, 160, 3))
    expected = collections.Counter(tuple(w.shape) for w in application.weights)
    expected.update([(1536, 128), (128,), (128,), (128,)])
    assert ours == expected
    assert names['InceptionResnetV2/Mixed_5b/Branch_3/Conv2d_0b_1x1/weights'] == (1, 1, 192, 64)
    assert names['InceptionResnetV2/Repeat_1/block17_20/Conv2d_1x1/biases'] == (1088,)
    assert names['InceptionResnetV2/Block8/Conv2d_1x1/weights'] == (1, 1, 448, 2080)
    assert names['InceptionResnetV2/Bottleneck/BatchNorm/moving_variance'] == (128,)


def test_squeezenet_and_dummy_variables():
    names = shapes(squeezenet.build_model(bottleneck_layer_size=64))
    assert names['squeezenet/conv1/weights'] == (7, 7, 3, 96)
    assert names['squeezenet/fire9/expand/3x3/weights'] == (3, 3, 64, 256)
    assert names['squeezenet/conv10/biases'] == (1000,)
    assert names['squeezenet/Bottleneck/weights'] == (1000, 64)
    assert 'squeezenet/conv10/BatchNorm/beta' not in names and 'squeezenet/fire2/squeeze/biases' not in names
    assert len(names) == 1 * 4 + 8 * 3 * 4 + 2 + 4
    assert shapes(dummy.build_model()) == {'Bottleneck/weights': (160 * 160 * 3, 128), 'Bottleneck/BatchNorm/beta': (128,),
                                           'Bottleneck/BatchNorm/moving_mean': (128,),
                                           'Bottleneck/BatchNorm/moving_variance': (128,)}


def test_weight_decay_is_slims_l2_regularizer():
    """slim.l2_regularizer(wd): wd * sum(w**2) / 2 on every kernel, none on biases or BatchNorm."""
    weight_decay = 5e-4
    model = squeezenet.build_model(weight_decay=weight_decay)
    kernels = [v for v in model.weights if v.path.endswith('/kernel')]
    expected = sum(weight_decay * np.sum(np.square(v.numpy().astype(np.float64))) / 2 for v in kernels)
    assert len(model.losses) == len(kernels) == 1 + 8 * 3 + 2
    np.testing.assert_allclose(float(sum(model.losses)), expected, rtol=1e-5)


def test_inference_keeps_the_original_contract_and_training_flag():
    images = np.random.default_rng(4).standard_normal((4, 160, 160, 3)).astype(np.float32)
    prelogits, end_points = inception_resnet_v1.inference(keras.Input((160, 160, 3)), 0.8, phase_train=True,
                                                         bottleneck_layer_size=256, weight_decay=1e-4)
    assert tuple(prelogits.shape) == (None, 256) and tuple(end_points['Mixed_7a'].shape) == (None, 3, 3, 1792)
    model = end_points['model']
    assert len(model.losses) == len([v for v in model.weights if v.path.endswith('/kernel')])
    # Inference: deterministic, moving statistics (mean 0, variance 1 at initialisation).
    np.testing.assert_array_equal(model(images, training=False), model(images, training=False))
    # Training: batch statistics and dropout.
    assert np.abs(model(images, training=True) - model(images, training=False)).max() > 1e-2

    prelogits, end_points = dummy.inference(images, 1.0, phase_train=False, bottleneck_layer_size=8)
    assert prelogits.shape == (4, 8) and set(end_points) == {'model'}


def test_batch_norm_folding_keeps_the_outputs(v2):
    model = v2
    rng = np.random.default_rng(5)
    for variable in model.weights:
        if 'moving' in variable.path or 'beta' in variable.path:
            base = 0.5 if 'variance' in variable.path else 0.0
            variable.assign(base + rng.uniform(0, 0.5, variable.shape).astype(np.float32))
    images = rng.standard_normal((2, 99, 99, 3)).astype(np.float32)
    folded = fold_batch_norm(model)
    assert not [v for v in folded.weights if 'BatchNorm' in v.path]
    expected = model(images, training=False).numpy()
    np.testing.assert_allclose(folded(images, training=False).numpy(), expected, rtol=1e-4,
                               atol=1e-4 * np.abs(expected).max())


def test_training_computes_stride_2_and_small_output_filter_gradients_as_patch_products_with_the_same_result(
        monkeypatch):
    """Conv2dBN in a training pass on the CPU (float32 or bfloat16): a stride-2 layer with at least 64 input
    channels, or one with a 3x3 output, takes its filter gradient as patches times the output gradient;
    outputs and both gradients equal the convolution's (float32 and bfloat16); stride-1 layers with a
    larger output, the 3-channel stem, inference and a GPU keep the convolution."""
    import tensorflow as tf
    from facenet_tf2.nets import layers as net_layers
    from facenet_tf2.nets.layers import Conv2dBN, patch_gradient_conv2d
    rng = np.random.default_rng(5)
    keras.mixed_precision.set_global_policy('mixed_bfloat16')
    try:
        cases = {'3x3 stride 2 valid': (Conv2dBN(24, 3, 2, 'valid', name='a'), (2, 8, 8, 64)),
                 '1x3 on 3x3': (Conv2dBN(24, (1, 3), name='b'), (2, 3, 3, 16)),
                 '3x1 same stride 2 on 7x7': (Conv2dBN(24, (3, 1), 2, name='c'), (2, 7, 7, 64)),
                 '3x3 on 17x17': (Conv2dBN(24, 3, name='d'), (2, 17, 17, 64)),
                 '3x3 stride 2 on 36x36': (Conv2dBN(24, 3, 2, 'valid', name='e'), (2, 36, 36, 64)),
                 'stem: 3x3 stride 2 on 3 channels': (Conv2dBN(24, 3, 2, 'valid', name='g'), (2, 40, 40, 3)),
                 '3x3 stride 2 on 16 channels': (Conv2dBN(24, 3, 2, 'valid', name='h'), (2, 16, 16, 16))}
    finally:
        keras.mixed_precision.set_global_policy('float32')
    cases['float32 3x3 stride 2 valid'] = (Conv2dBN(24, 3, 2, 'valid', name='f'), (2, 8, 8, 64))
    expected = {'3x3 stride 2 valid': True, '1x3 on 3x3': True, '3x1 same stride 2 on 7x7': True, '3x3 on 17x17': False,
                '3x3 stride 2 on 36x36': True, 'stem: 3x3 stride 2 on 3 channels': False,
                '3x3 stride 2 on 16 channels': False, 'float32 3x3 stride 2 valid': True}
    for name, (layer, shape) in cases.items():
        layer.build(shape)
        x = tf.zeros(shape)
        assert layer._runs_with_patch_filter_gradient(x, True) == expected[name], name
        assert not layer._runs_with_patch_filter_gradient(x, False)
    with monkeypatch.context() as patch:  # a GPU runs cuDNN's convolutions
        patch.setattr(net_layers, '_runs_on_onednn', lambda: False)
        assert not cases['3x3 stride 2 valid'][0]._runs_with_patch_filter_gradient(tf.zeros((2, 8, 8, 64)), True)
    for (layer, shape), dtype in [(cases[n], d) for n in ('3x3 stride 2 valid', '1x3 on 3x3', '3x1 same stride 2 on 7x7',
                                                          '3x3 stride 2 on 36x36') for d in (tf.float32, tf.bfloat16)]:
        x = tf.cast(rng.standard_normal(shape), dtype)
        w = tf.cast(rng.standard_normal(layer.kernel.shape) * 0.2, dtype)
        strides, padding = layer.strides, layer.padding.upper()
        results = []
        for function in (patch_gradient_conv2d, lambda a, b, s, p: tf.nn.conv2d(a, b, s, p)):
            with tf.GradientTape() as tape:
                tape.watch([x, w])
                outputs = function(x, w, strides, padding)
                loss = tf.reduce_sum(tf.cast(outputs, tf.float32) ** 2)
            results.append([tf.cast(t, tf.float32).numpy() for t in (outputs, *tape.gradient(loss, [x, w]))])
        tolerance = 1e-5 if dtype == tf.float32 else 0.02
        for got, want in zip(*results):
            assert np.abs(want).max() > 0.1
            np.testing.assert_allclose(got, want, atol=tolerance * np.abs(want).max())
    # the training call takes that path: its output is the convolution's
    layer, shape = cases['3x3 stride 2 valid']
    x = tf.cast(rng.standard_normal(shape), tf.bfloat16)
    with keras.src.backend.AutocastScope('bfloat16'):
        direct = tf.nn.conv2d(x, tf.cast(layer.kernel.value, tf.bfloat16), layer.strides, 'VALID')
        via_layer = layer._convolve(x, True)
    np.testing.assert_allclose(tf.cast(via_layer, tf.float32).numpy(), tf.cast(direct, tf.float32).numpy(), atol=1e-6)


@pytest.mark.parametrize('module', [inception_resnet_v1, inception_resnet_v2, squeezenet, dummy])
def test_model_def_modules_keep_the_original_interface(module):
    assert callable(module.inference) and callable(module.build_model)
    assert module.build_model.__module__ in weights.ARCHITECTURES.values()  # a facade over facenet_tf2.nets


def test_training_runs_1x1_convolutions_as_matrix_products_with_the_same_result(monkeypatch):
    """Conv2dBN / Conv2dBias: a 1x1 stride-1 layer in a training pass on the CPU is a matrix product
    (oneDNN's backward convolutions are slow for these shapes), in float32 and bfloat16; its outputs and
    gradients equal the convolution's; inference, 3x3 layers and a GPU keep the convolution."""
    import tensorflow as tf
    from facenet_tf2.nets import layers as net_layers
    from facenet_tf2.nets.layers import Conv2dBN, conv2d_bias
    rng = np.random.default_rng(3)
    images = rng.standard_normal((4, 5, 5, 24)).astype(np.float32)
    keras.mixed_precision.set_global_policy('mixed_bfloat16')
    try:
        layers = {'bn 1x1': Conv2dBN(16, 1, name='a'), 'bias 1x1': conv2d_bias(16, 1, name='b'),
                  'bn 3x3': Conv2dBN(16, 3, name='c')}
    finally:
        keras.mixed_precision.set_global_policy('float32')
    float_layer = conv2d_bias(16, 1, name='d')
    for layer in (*layers.values(), float_layer):
        layer.build(images.shape)
    assert layers['bn 1x1']._runs_as_matmul(True) and layers['bias 1x1']._runs_as_matmul(True)
    assert not layers['bn 1x1']._runs_as_matmul(False) and not layers['bn 3x3']._runs_as_matmul(True)
    assert float_layer._runs_as_matmul(True)
    with monkeypatch.context() as patch:  # a GPU runs cuDNN's convolutions
        patch.setattr(net_layers, '_runs_on_onednn', lambda: False)
        assert not float_layer._runs_as_matmul(True) and not layers['bn 1x1']._runs_as_matmul(True)
    # float32: the product's outputs and kernel gradient are the convolution's to float32 rounding
    float_layer.kernel.assign(rng.standard_normal(float_layer.kernel.shape).astype(np.float32) * 0.2)
    float_layer.bias.assign(rng.standard_normal(16).astype(np.float32))
    results = []
    for run in (lambda x: float_layer(x, training=True), lambda x: keras.layers.Conv2D.call(float_layer, x)):
        with tf.GradientTape() as tape:
            outputs = run(tf.constant(images))
            loss = tf.reduce_sum(outputs ** 2)
        results.append((outputs.numpy(), *[g.numpy() for g in tape.gradient(loss, [float_layer.kernel.value,
                                                                                    float_layer.bias.value])]))
    for got, want in zip(*results):
        assert np.abs(want).max() > 0.5
        np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max())
    for name in ('bn 1x1', 'bias 1x1'):
        layer = layers[name]
        layer.kernel.assign(rng.standard_normal(layer.kernel.shape).astype(np.float32) * 0.2)
        x = tf.cast(tf.constant(images), tf.bfloat16)
        results = []
        for product in (True, False):
            with tf.GradientTape() as tape:
                with keras.src.backend.AutocastScope('bfloat16'):
                    outputs = layer._pointwise(x) if product else keras.layers.Conv2D.call(layer, x)
                loss = tf.reduce_sum(tf.cast(outputs, tf.float32) ** 2)
            results.append((tf.cast(outputs, tf.float32).numpy(), tape.gradient(loss, layer.kernel.value).numpy()))
        (outputs, gradient), (expected_outputs, expected_gradient) = results
        assert outputs.dtype == expected_outputs.dtype and np.abs(expected_outputs).max() > 0.5
        np.testing.assert_allclose(outputs, expected_outputs, atol=0.02 * np.abs(expected_outputs).max())
        np.testing.assert_allclose(gradient, expected_gradient, atol=0.02 * np.abs(expected_gradient).max())
        # the training call takes that path: the same outputs as the product
        trained = layer(x, training=True) if name == 'bias 1x1' else None
        if trained is not None:
            np.testing.assert_allclose(tf.cast(trained, tf.float32).numpy(), outputs, atol=1e-6)
