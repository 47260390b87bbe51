"""Keras 3 layers that reproduce the TF-Slim building blocks of the original models.

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
    return '/'.join(part for part in (scope, head, _KERAS_TO_SLIM_LEAF.get(leaf, leaf)) if part)


def l2_normalize(prelogits):
    """The networks' `embeddings` output: prelogits / sqrt(max(sum(prelogits**2), 1e-10)) per row."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf.math.l2_normalize(prelogits, axis=1, epsilon=1e-10)


@keras.saving.register_keras_serializable(package='facenet')
class SlimL2(keras.regularizers.Regularizer):
    """slim.l2_regularizer(wd): wd * tf.nn.l2_loss(w) = wd * sum(w**2) / 2, as the original computed it.

    One L2Loss kernel forwards and one multiply backwards (its gradient is wd * w), where Keras'
    L2 (l2 * sum(w**2)) runs square, sum and multiply forwards and their three gradients back: on
    Inception-ResNet-v1 that was 4.5% of a float32 training step's op time.
    """

    def __init__(self, weight_decay):
        self.weight_decay = float(weight_decay)

    def __call__(self, x):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        return self.weight_decay * tf.nn.l2_loss(x)

    def get_config(self):
        return {'weight_decay': self.weight_decay}


def l2_regularizer(weight_decay):
    """slim.l2_regularizer(wd): wd * sum(w**2) / 2 (SlimL2); None for no weight decay."""
    return SlimL2(weight_decay) if weight_decay else None


@keras.saving.register_keras_serializable(package='facenet')
class SlimBatchNormalization(layers.BatchNormalization):
    """Keras BatchNormalization with TF1's training-mode computation, which slim used.

    In training, slim ran TF's fused batch norm: one kernel that normalises with the biased batch
    variance and returns the unbiased one, var * n / (n - 1) (n values per channel), towards which
    `moving_variance` moves; Keras moves it towards the biased variance, and computes the
    statistics and the normalisation as separate ops (slower, forwards and backwards). Here the
    training step runs that fused kernel (a 2-D input as [N, 1, 1, C], as slim did). With
    `synchronized` (set it on the layer, for tf.distribute) the statistics and n span every
    replica's batch, as one device's would; that path uses Keras' all-reduced moments.
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None or self.renorm:
            return super().call(inputs, training=training, mask=mask)
        if self.synchronized or keras.backend.standardize_dtype(inputs.dtype) not in ('bfloat16', 'float16'):
            # bfloat16 / float16 go to the fused kernel as they are (it normalises them with float32
            # statistics): casting them to float32 and back cost a pass each way, forwards and backwards.
            inputs = ops.cast(inputs, keras.backend.result_type(inputs.dtype, 'float32'))
        if self.synchronized:
            mean, variance = self._moments(inputs, None)
            count = ops.cast(ops.prod(ops.take(ops.shape(inputs), self._reduction_axes)), inputs.dtype)
            count = count * _replicas_in_sync()
            unbiased = variance * count / ops.maximum(count - 1.0, 1.0)
            outputs = ops.batch_normalization(inputs, mean, variance, axis=self.axis,
                                              offset=ops.cast(self.beta, inputs.dtype) if self.center else None,
                                              scale=ops.cast(self.gamma, inputs.dtype) if self.scale else None,
                                              epsilon=self.epsilon)
        else:
            outputs, mean, unbiased = _fused_batch_norm_training(
                inputs, self.gamma if self.scale else None, self.beta if self.center else None, self.epsilon)
        self.moving_mean.assign(self.moving_mean * self.momentum + ops.cast(mean, self.moving_mean.dtype)
                                * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum
                                    + ops.cast(unbiased, self.moving_variance.dtype) * (1.0 - self.momentum))
        return ops.cast(outputs, self.compute_dtype)


def _fused_batch_norm_training(inputs, gamma, beta, epsilon):
    """(normalised NHWC or NC inputs, batch mean, unbiased batch variance) from TF's fused kernel."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    shape = tf.shape(inputs)
    channels = inputs.shape[-1]
    images = inputs if inputs.shape.rank == 4 else tf.reshape(inputs, [-1, 1, 1, channels])
    outputs, mean, unbiased, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=images, scale=tf.ones([channels]) if gamma is None else tf.cast(gamma, tf.float32),
        offset=tf.zeros([channels]) if beta is None else tf.cast(beta, tf.float32),
        mean=tf.constant([], tf.float32), variance=tf.constant([], tf.float32), epsilon=epsilon,
        exponential_avg_factor=1.0, data_format='NHWC', is_training=True)
    return tf.reshape(outputs, shape), mean, unbiased


def _replicas_in_sync():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    context = tf.distribute.get_replica_context()
    return float(context.num_replicas_in_sync) if context is not None else 1.0


def batch_norm(name='BatchNorm', dtype=None):
    return SlimBatchNormalization(momentum=BATCH_NORM_DECAY, epsilon=BATCH_NORM_EPSILON, center=True,
                                  scale=False, name=name, dtype=dtype)


def _runs_on_onednn():
    """Whether the layers run on the CPU (oneDNN's convolutions), i.e. no GPU is visible: the matrix
    product forms below were measured against oneDNN only; on a GPU cuDNN's convolutions run."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return not tf.config.list_logical_devices('GPU')


class _TrainingConvolution:
    """Mixin for a Conv2D: in a training pass on the CPU, where oneDNN's backward convolutions are slow
    for some of Inception-ResNet's shapes, the same arithmetic runs as matrix products instead, in
    float32 and in bfloat16 (benchmarks/profile_convs.py times both forms of every shape):
    - a 1x1, stride-1 convolution is one matrix product, [N*H*W, C_in] x [C_in, C_out]: on the AMD
      CPU in float32 the network's 1x1 shapes took 0.58-0.93 of the convolutions' time this way
      (Block8's 1792 -> 192 on 3x3: 3.70 ms for forward and both gradients against 6.33), and on AMX
      in bfloat16 Block8's 384 -> 1792 ran at 38 GFLOP/s as a convolution, a third of the product's;
    - a stride-2 layer and a layer with a small output take their filter gradient as patches times
      the output gradient (`_runs_with_patch_filter_gradient`, `patch_gradient_conv2d`).
    Inference keeps the plain convolution, so exported graphs are unchanged, and so does a GPU."""

    def _runs_as_matmul(self, training):
        return bool(training) and tuple(self.kernel_size) == (1, 1) and tuple(self.strides) == (1, 1) \
            and tuple(self.dilation_rate) == (1, 1) and self.groups == 1 and self.data_format == 'channels_last' \
            and _runs_on_onednn()

    def _pointwise(self, inputs):
        channels_in, channels_out = self.kernel.shape[-2], self.kernel.shape[-1]
        flat = ops.matmul(ops.reshape(inputs, (-1, channels_in)), ops.reshape(self.kernel, (channels_in, channels_out)))
        return self._bias_and_activation(ops.reshape(flat, (*ops.shape(inputs)[:-1], channels_out)))

    def _bias_and_activation(self, outputs):
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs

    def _runs_with_patch_filter_gradient(self, inputs, training):
        """In a training pass on the CPU, a k x k layer (k > 1) with stride 2 and at least 64 input
        channels, or with an output of at most 3 x 3, computes its filter gradient as image patches
        times the output gradient. oneDNN's backward-weights convolution runs these shapes (the
        stride-2 layers of Conv2d_4b, Mixed_6a and Mixed_7a, Block8's 1x3 / 3x1 on 3x3 maps) at
        51-130 GFLOP/s in float32 and 28-67 in bfloat16 on the AMD CPU, where the large layers run at
        190-235; as patches they took 0.78-0.91 of the time in float32 and 0.26-1.06 in bfloat16.
        The stem's stride-2 layer (3 input channels) and the stride-1 layers lose this way (a patch
        matrix of 9 x C_in columns is written and read once more) and keep the convolution."""
        if not (bool(training) and self.data_format == 'channels_last' and tuple(self.dilation_rate) == (1, 1)
                and self.groups == 1 and tuple(self.kernel_size) != (1, 1)):
            return False
        size = tuple(inputs.shape[1:3])
        if None in size:
            return False
        if self.padding == 'valid':
            out = [(n - k) // s + 1 for n, k, s in zip(size, self.kernel_size, self.strides)]
        else:
            out = [-(-n // s) for n, s in zip(size, self.strides)]
        return ((tuple(self.strides) == (2, 2) and inputs.shape[-1] >= 64) or max(out) <= 3) and _runs_on_onednn()

    def _convolve(self, inputs, training):
        if self._runs_as_matmul(training):
            return self._pointwise(inputs)
        if self._runs_with_patch_filter_gradient(inputs, training):
            return self._bias_and_activation(patch_gradient_conv2d(
                inputs, ops.cast(self.kernel, self.compute_dtype), self.strides, self.padding.upper()))
        return layers.Conv2D.call(self, inputs)


def patch_gradient_conv2d(inputs, kernel, strides, padding):
    """tf.nn.conv2d (NHWC) whose filter gradient is computed as image patches [N*H'*W', kh*kw*C_in] (transposed)
    times the output gradient [N*H'*W', C_out]: the same sums as Conv2DBackpropFilter, as one matrix
    product. The input gradient stays Conv2DBackpropInput."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    strides = [1, *strides, 1]

    @tf.custom_gradient
    def convolution(x, w):
        def gradient(dy):
            with tf.name_scope('patch_filter_gradient'):  # a custom gradient runs outside the tape's name scope
                dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=w, out_backprop=dy,
                                                    strides=strides, padding=padding)
                rows, cols, channels_in, channels_out = w.shape
                patches = tf.image.extract_patches(x, [1, rows, cols, 1], strides, [1, 1, 1, 1], padding)
                dw = tf.matmul(tf.reshape(patches, (-1, rows * cols * channels_in)),
                               tf.reshape(dy, (-1, channels_out)), transpose_a=True)
                return dx, tf.reshape(dw, tf.shape(w))

        return tf.nn.conv2d(x, w, strides, padding), gradient

    return convolution(inputs, kernel)


class _BatchNormed:
    """Mixin for a slim layer with normalizer_fn=batch_norm: no bias, then a BatchNorm sub-layer
    named `BatchNorm` (as in slim's variable scope), then the activation."""
    activation_after_batch_norm = None

    def __init__(self, *args, weight_decay=0.0, **kwargs):
        kwargs.setdefault('kernel_initializer', 'glorot_uniform')
        kwargs.setdefault('kernel_regularizer', l2_regularizer(weight_decay))
        kwargs.pop('use_bias', None)
        kwargs.pop('activation', None)
        super().__init__(*args, use_bias=False, **kwargs)
        self.batch_norm = batch_norm(dtype=self.dtype_policy)

    def build(self, input_shape):
        super().build(input_shape)
        self.batch_norm.build(self.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        net = self.batch_norm(self._transform(inputs, training), training=training)
        return self.activation_after_batch_norm(net) if self.activation_after_batch_norm else net

    def _transform(self, inputs, training):
        return super().call(inputs)


@keras.saving.register_keras_serializable(package='facenet')
class Conv2dBN(_BatchNormed, _TrainingConvolution, layers.Conv2D):
    """slim.conv2d with its defaults: convolution without bias, BatchNorm, ReLU."""
    activation_after_batch_norm = staticmethod(ops.relu)

    def _transform(self, inputs, training):
        return self._convolve(inputs, training)

    def __init__(self, filters, kernel_size, strides=1, padding='same', weight_decay=0.0, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, weight_decay=weight_decay, **kwargs)


@keras.saving.register_keras_serializable(package='facenet')
class DenseBN(_BatchNormed, layers.Dense):
    """slim.fully_connected with BatchNorm and no activation: the `Bottleneck` layer."""


@keras.saving.register_keras_serializable(package='facenet')
class Conv2dBias(_TrainingConvolution, layers.Conv2D):
    """slim.conv2d with normalizer_fn=None, activation_fn=None: convolution plus bias."""

    def call(self, inputs, training=None):
        return self._convolve(inputs, training)


def conv2d_bias(filters, kernel_size, weight_decay=0.0, name=None, dtype=None):
    """slim.conv2d with normalizer_fn=None, activation_fn=None: convolution plus bias."""
    return Conv2dBias(filters, kernel_size, padding='same', use_bias=True, kernel_initializer='glorot_uniform',
                      kernel_regularizer=l2_regularizer(weight_decay), name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package='facenet')
class Sequence(layers.Layer):
    """Layers applied one after the other inside one variable scope: a slim branch
    (`Branch_1`) or a slim.repeat (`Repeat`, holding `block35_1`, `block35_2`, ...)."""

    def __init__(self, parts, **kwargs):
        super().__init__(**kwargs)
        self.parts = list(parts)

    def build(self, input_shape):
        for part in self.parts:
            _build_once(part, input_shape)
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


def _build_once(layer, input_shape):
    # Deserialisation (.keras files) builds the parts before the container that holds them.
    if not layer.built:
        layer.build(input_shape)


def branch(name, *parts):
    return Sequence(parts, name=name)


def max_pool(name, pool_size=3, strides=2, padding='valid'):
    return layers.MaxPooling2D(pool_size, strides=strides, padding=padding, name=name)


@keras.saving.register_keras_serializable(package='facenet')
class Mixed(Sequence):
    """Parallel branches on the same input, concatenated on channels (Mixed_6a, Mixed_7a, ...)."""

    def build(self, input_shape):
        for part in self.parts:
            _build_once(part, input_shape)

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
        self.up = conv2d_bias(input_shape[-1], 1, self.weight_decay, name='Conv2d_1x1', dtype=self.dtype_policy)
        self.up.build(super().compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        up = self.up(super().call(inputs, training=training), training=training)
        net = inputs + (up if self.scale == 1.0 else self.scale * up)
        return ops.relu(net) if self.activation else net

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), 'scale': self.scale, 'activation': self.activation,
                'weight_decay': self.weight_decay}


def inference_from_builder(builder, images, keep_probability, phase_train, bottleneck_layer_size, weight_decay):
    """The body of every model's original-style `inference(images, keep_probability, phase_train,
    bottleneck_layer_size, weight_decay)`: builds the network for `images`, runs it with
    training=phase_train and returns (prelogits, end_points), end_points['model'] being the
    Keras model mapping images to prelogits."""
    model = builder(image_size=images.shape[1], dropout_keep_prob=keep_probability,
                    bottleneck_layer_size=bottleneck_layer_size, weight_decay=weight_decay, end_points=True)
    outputs = dict(model(images, training=phase_train))
    prelogits = outputs.pop('prelogits')
    outputs['model'] = keras.Model(model.input, model.output['prelogits'], name=model.name)
    return prelogits, outputs


def embedding_network(stages, image_size, dropout_keep_prob, bottleneck_layer_size, weight_decay, end_points, name):
    """The Keras model of an Inception-ResNet: `stages` ((end point, layer) in order), then the
    original's `Logits` scope (average pool over the whole map, flatten, dropout) and the
    `Bottleneck` (fully connected, no bias, BatchNorm) giving the prelogits.

    With end_points the model outputs a dict: 'prelogits' and every end point by name.
    """
    inputs = keras.Input((image_size, image_size, 3), name='input')
    points = {}
    net = inputs
    for point, layer in stages:
        net = points[point] = layer(net)
    points['PrePool'] = net
    net = layers.GlobalAveragePooling2D(name='AvgPool_1a_8x8')(net)
    net = points['PreLogitsFlatten'] = SeededDropout(1.0 - dropout_keep_prob, name='Dropout')(net)
    prelogits = DenseBN(bottleneck_layer_size, weight_decay=weight_decay, name='Bottleneck')(net)
    return keras.Model(inputs, {'prelogits': prelogits, **points} if end_points else prelogits, name=name)


@keras.saving.register_keras_serializable(package='facenet')
class SeededDropout(layers.Dropout):
    """Keras Dropout whose training-mode mask can be a pure function of a seed: when `step_seed`
    is set (a callable returning an int [2] tensor, e.g. from the run's seed and global step, as
    training.core.Trainer sets it), the mask is tf.nn.experimental.stateless_dropout's for that
    seed, so a resumed run draws the masks the uninterrupted run drew. Unset, it is Keras' Dropout."""
    step_seed = None

    def call(self, inputs, training=False):
        if training and self.rate > 0 and self.step_seed is not None:
            import tensorflow as tf  # pylint: disable=import-outside-toplevel
            return tf.nn.experimental.stateless_dropout(inputs, rate=self.rate, seed=self.step_seed())
        return super().call(inputs, training=training)


def avg_pool(name, pool_size=3, strides=1, padding='same'):
    """slim.avg_pool2d with padding SAME: like TF, border windows average only the valid pixels."""
    return layers.AveragePooling2D(pool_size, strides=strides, padding=padding, name=name)
