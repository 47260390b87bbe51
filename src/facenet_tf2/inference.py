"""Inference-optimised copies of the Keras networks: BatchNorm folded into the layer before it.

At inference BatchNorm is an affine map per channel, y = (x - mean) / sqrt(var + eps) + beta
(no gamma in these networks), so a convolution (or dense layer) without bias followed by it is
the same convolution with kernel * s and bias beta - mean * s, s = 1 / sqrt(var + eps). TF's
grappler then fuses convolution, bias and ReLU into one oneDNN kernel on CPU (cuDNN on GPU).
The folded copy has the same layer tree with Conv2dBN -> Conv2D(bias, relu) and DenseBN ->
Dense(bias); it is built from the original model's config, so every network in models/ folds.
"""
import keras
import numpy as np

from facenet_tf2.nets.layers import BATCH_NORM_EPSILON, Conv2dBN, DenseBN, InceptionResnetBlock

_FOLDED = {'Conv2dBN': ('Conv2D', 'relu'), 'DenseBN': ('Dense', 'linear')}


def _fold_config(config, dtype_policy):
    """The serialized layer tree with every Conv2dBN / DenseBN replaced by its folded layer (and
    every layer's dtype policy replaced by `dtype_policy` if given)."""
    if isinstance(config, list):
        return [_fold_config(item, dtype_policy) for item in config]
    if not isinstance(config, dict):
        return config
    if dtype_policy and config.get('class_name') == 'DTypePolicy':
        return dtype_policy
    config = {key: _fold_config(value, dtype_policy) for key, value in config.items()}
    if config.get('class_name') == 'InceptionResnetBlock' and 'config' in config:
        config['config']['scale'] = 1.0  # folded into the 'up' convolution
    if config.get('class_name') in _FOLDED and 'config' in config:
        class_name, activation = _FOLDED[config['class_name']]
        layer_config = dict(config['config'], use_bias=True, activation=activation, kernel_regularizer=None)
        config.update(module='keras.layers', class_name=class_name, registered_name=None, config=layer_config)
    return config


def _copy_folded(source, target):
    """Copies the weights of `source` into its folded twin `target`, layer tree by layer tree."""
    if isinstance(source, (Conv2dBN, DenseBN)):
        bn = source.batch_norm
        scale = 1.0 / np.sqrt(bn.moving_variance.numpy().astype(np.float64) + BATCH_NORM_EPSILON)
        target.kernel.assign((source.kernel.numpy() * scale).astype(np.float32))
        target.bias.assign((bn.beta.numpy() - bn.moving_mean.numpy() * scale).astype(np.float32))
        return
    children = list(source._flatten_layers(include_self=False, recursive=False))  # pylint: disable=protected-access
    twins = list(target._flatten_layers(include_self=False, recursive=False))  # pylint: disable=protected-access
    if not children:
        for variable, value in zip(target.weights, source.weights):
            variable.assign(value)
    for child, twin in zip(children, twins, strict=True):
        _copy_folded(child, twin)
    if isinstance(source, InceptionResnetBlock):  # its residual scale moves into the 'up' convolution
        target.up.kernel.assign(source.up.kernel * source.scale)
        target.up.bias.assign(source.up.bias * source.scale)


def fold_batch_norm(model, dtype_policy=None):
    """A copy of `model` for inference only, with each BatchNorm folded into the layer before it.

    Outputs equal model(x, training=False) up to float32 rounding (the order of the products
    changes); the copy has no BatchNorm and no dropout effect, so do not train it.
    dtype_policy, e.g. 'mixed_bfloat16', computes in that precision (weights stay float32).
    """
    config = keras.saving.serialize_keras_object(model)['config']
    folded = keras.Model.from_config(_fold_config(config, dtype_policy))
    _copy_folded(model, folded)
    return folded
