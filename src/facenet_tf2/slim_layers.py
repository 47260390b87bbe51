"""Keras 3 layers that reproduce the tf-slim building blocks of the original models.

The layers nest exactly like the original variable scopes, so a Keras variable's path is the
original variable name without the model scope: `Repeat/block35_1/Branch_1/Conv2d_0b_3x3/kernel`
is `InceptionResnetV1/Repeat/block35_1/Branch_1/Conv2d_0b_3x3/weights`. `original_name` turns one
into the other; every weight import and export goes through it.

slim conventions kept: BatchNorm with decay 0.995, epsilon 0.001, centre (beta) but no scale
(gamma); convolutions followed by BatchNorm have no bias; weight decay is slim's l2_regularizer,
wd * sum(w**2) / 2.
"""
import keras
from keras import layers, ops

BATCH_NORM_DECAY = 0.995
BATCH_NORM_EPSILON = 0.001

# Keras names the variables `kernel` and `bias`; slim named them `weights` and `biases`.
_KERAS_TO_SLIM_LEAF = {'kernel': 'weights', 'bias': 'biases'}


def original_name(scope, path):
    """The original variable name of the Keras variable at `path` in a model whose variables
    lived under `scope` ('' for no scope)."""
    head, _, leaf = path.rpartition('/')
    name = f'{head}/{_KERAS_TO_SLIM_LEAF.get(leaf, leaf)}' if head else _KERAS_TO_SLIM_LEAF.get(leaf, leaf)
    return f'{scope}/{name}' if scope else name


def l2_regularizer(weight_decay):
    """slim.l2_regularizer(wd) is wd * sum(w**2) / 2; Keras' L2(l2) is l2 * sum(w**2)."""
    return keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None


def batch_norm(name='BatchNorm'):
    return layers.BatchNormalization(momentum=BATCH_NORM_DECAY, epsilon=BATCH_NORM_EPSILON, center=True,
                                     scale=False, name=name)


@keras.saving.register_keras_serializable(package='facenet')
class Conv2dBN(layers.Conv2D):
    """slim.conv2d with its default normalizer: convolution without bias, BatchNorm, ReLU.

    The BatchNorm is a sub-layer named `BatchNorm`, as in slim's variable scope.
    """

    def __init__(self, filters, kernel_size, strides=1, padding='same', weight_decay=0.0, **kwargs):
        kwargs.setdefault('kernel_initializer', 'glorot_uniform')
        kwargs.setdefault('kernel_regularizer', l2_regularizer(weight_decay))
        kwargs.pop('use_bias', None)
        kwargs.pop('activation', None)
        super().__init__(filters, kernel_size, strides=strides, padding=padding, use_bias=False, **kwargs)
        self.batch_norm = batch_norm()

    def build(self, input_shape):
        super().build(input_shape)
        self.batch_norm.build(self.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        return ops.relu(self.batch_norm(super().call(inputs), training=training))


@keras.saving.register_keras_serializable(package='facenet')
class DenseBN(layers.Dense):
    """slim.fully_connected with BatchNorm and no activation: the `Bottleneck` layer."""

    def __init__(self, units, weight_decay=0.0, **kwargs):
        kwargs.setdefault('kernel_initializer', 'glorot_uniform')
        kwargs.setdefault('kernel_regularizer', l2_regularizer(weight_decay))
        kwargs.pop('use_bias', None)
        kwargs.pop('activation', None)
        super().__init__(units, use_bias=False, **kwargs)
        self.batch_norm = batch_norm()

    def build(self, input_shape):
        super().build(input_shape)
        self.batch_norm.build(self.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        return self.batch_norm(super().call(inputs), training=training)


def conv2d_bias(filters, kernel_size, weight_decay=0.0, name=None):
    """slim.conv2d with normalizer_fn=None, activation_fn=None: convolution plus bias."""
    return layers.Conv2D(filters, kernel_size, padding='same', use_bias=True, kernel_initializer='glorot_uniform',
                         kernel_regularizer=l2_regularizer(weight_decay), name=name)


@keras.saving.register_keras_serializable(package='facenet')
class Sequence(layers.Layer):
    """Layers applied one after the other inside one variable scope: a slim branch
    (`Branch_1`) or a slim.repeat (`Repeat`, holding `block35_1`, `block35_2`, ...)."""

    def __init__(self, parts, **kwargs):
        super().__init__(**kwargs)
        self.parts = list(parts)

    def build(self, input_shape):
        for part in self.parts:
            part.build(input_shape)
            input_shape = part.compute_output_shape(input_shape)

    def call(self, inputs, training=None):
        for part in self.parts:
            inputs = part(inputs, training=training)
        return inputs

    def compute_output_shape(self, input_shape):
        for part in self.parts:
            input_shape = part.compute_output_shape(input_shape)
        return input_shape

    def get_config(self):
        return {**super().get_config(), 'parts': [keras.saving.serialize_keras_object(c) for c in self.parts]}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config['parts'] = [keras.saving.deserialize_keras_object(c) for c in config['parts']]
        return cls(**config)


def branch(name, *parts):
    return Sequence(parts, name=name)


def max_pool(name, pool_size=3, strides=2, padding='valid'):
    return layers.MaxPooling2D(pool_size, strides=strides, padding=padding, name=name)


@keras.saving.register_keras_serializable(package='facenet')
class Mixed(Sequence):
    """Parallel branches on the same input, concatenated on channels (Mixed_6a, Mixed_7a, ...)."""

    def build(self, input_shape):
        for part in self.parts:
            part.build(input_shape)

    def call(self, inputs, training=None):
        return ops.concatenate([part(inputs, training=training) for part in self.parts], axis=-1)

    def compute_output_shape(self, input_shape):
        shapes = [part.compute_output_shape(input_shape) for part in self.parts]
        return (*shapes[0][:-1], sum(shape[-1] for shape in shapes))


@keras.saving.register_keras_serializable(package='facenet')
class InceptionResnetBlock(Mixed):
    """An Inception-ResNet block (block35 / block17 / block8): the branches are concatenated,
    projected back by the 'up' convolution `Conv2d_1x1` (bias, no BatchNorm), scaled and added
    to the input, then ReLU unless `activation` is False (the last Block8)."""

    def __init__(self, parts, scale=1.0, activation=True, weight_decay=0.0, **kwargs):
        super().__init__(parts, **kwargs)
        self.scale = scale
        self.activation = activation
        self.weight_decay = weight_decay
        self.up = None

    def build(self, input_shape):
        super().build(input_shape)
        self.up = conv2d_bias(input_shape[-1], 1, self.weight_decay, name='Conv2d_1x1')
        self.up.build(super().compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        net = inputs + self.scale * self.up(super().call(inputs, training=training))
        return ops.relu(net) if self.activation else net

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), 'scale': self.scale, 'activation': self.activation,
                'weight_decay': self.weight_decay}
