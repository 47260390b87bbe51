"""The loss terms of the original train_softmax.py and the classifier heads they sit on.

Every batch-mean term takes `global_batch_size`: None is the plain mean over the batch given;
a number makes it sum(batch) / global_batch_size, so that under tf.distribute the per-replica
values add up (SUM all-reduce) to the mean over the global batch. Everything is computed in
float32 whatever the compute dtype of the network.

Classifier heads, chosen by `--loss`:
- softmax: the original's `Logits` layer, slim.fully_connected without activation;
- arcface: s * cos(theta + m) on the target class, s * cos(theta) elsewhere (ArcFace,
  arXiv:1801.07698), with insightface's handling past theta + m = pi;
- cosface: s * (cos(theta) - m) on the target class (CosFace, arXiv:1801.09414).
All three hold their class weights as `Logits/kernel` ([D, nrof_classes]), which
nets.layers.original_name maps to the original `Logits/weights`. They compute in float32 by
default also under a mixed-precision policy (the layer before a softmax should).
"""
import math

import keras
import tensorflow as tf

from facenet_tf2.nets.layers import l2_regularizer

LOSSES = ('softmax', 'arcface', 'cosface')
# (s, m) when --margin_s / --margin_m are not given.
MARGIN_DEFAULTS = {'arcface': (64.0, 0.5), 'cosface': (64.0, 0.35)}
# The original's epsilon inside the prelogits norm.
PRELOGITS_NORM_EPSILON = 1e-4
# cos(theta) is kept this far inside [-1, 1]: sin = sqrt(1 - cos^2) then has a finite gradient.
COS_EPSILON = 1e-7
_NORMALIZE_EPSILON = 1e-12


def _batch_mean(per_example, global_batch_size):
    if global_batch_size is None:
        return tf.reduce_mean(per_example)
    return tf.reduce_sum(per_example) / tf.cast(global_batch_size, per_example.dtype)


def _flat_labels(labels):
    return tf.reshape(tf.cast(labels, tf.int32), [-1])


def softmax_cross_entropy(labels, logits, global_batch_size=None):
    """Mean sparse softmax cross-entropy over the batch (the original's cross_entropy_mean);
    divided by global_batch_size instead when given (a replica's share of the global mean)."""
    per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=_flat_labels(labels),
                                                                 logits=tf.cast(logits, tf.float32))
    return _batch_mean(per_example, global_batch_size)


def accuracy(labels, logits, global_batch_size=None):
    """The fraction of the batch whose largest logit is its label's."""
    predicted = tf.argmax(logits, axis=1, output_type=tf.int32)
    return _batch_mean(tf.cast(tf.equal(predicted, _flat_labels(labels)), tf.float32), global_batch_size)


def fixed_width_histogram(values, value_range, nbins):
    """tf.histogram_fixed_width(values, value_range, nbins) (int32 counts) with ops XLA compiles: the
    kernel's own bin rule, index = min(trunc((max(v, lo) - lo) / ((hi - lo) / nbins)), nbins - 1) in
    double precision, counted with a segment sum (HistogramFixedWidth has no XLA kernel)."""
    low, high = float(value_range[0]), float(value_range[1])
    values = tf.reshape(tf.cast(values, tf.float32), [-1])
    step = (high - low) / nbins
    index = tf.cast(tf.minimum(tf.cast(tf.maximum(values, low) - low, tf.float64) / step, nbins - 1.0), tf.int32)
    return tf.math.unsorted_segment_sum(tf.ones_like(index), index, nbins)


def prelogits_norm(prelogits, p, global_batch_size=None):
    """mean over the batch of norm(|prelogits| + 1e-4, ord=p), the original's prelogits norm."""
    prelogits = tf.cast(prelogits, tf.float32)
    return _batch_mean(tf.norm(tf.abs(prelogits) + PRELOGITS_NORM_EPSILON, ord=p, axis=1), global_batch_size)


def center_loss(features, labels, centers, alfa, global_batch_size=None):
    """(loss, delta) of the centre loss of `features` against `centers` ([nrof_classes, D]), as the
    original facenet.center_loss computed it.

    loss is the mean of (features - centers[labels])**2 over the batch
    and the feature dimensions, with the centres as they are before this step's update; the
    gradient reaches `centers` through the gather, as in the original, where the optimizer
    also stepped them. delta is the original's scatter_sub update, (1 - alfa) *
    (centers[labels] - features) as tf.IndexedSlices on the labels, to be subtracted
    (apply_center_update); a label that occurs twice moves its centre twice. Per-replica deltas
    all-reduced with SUM give the delta of the global batch.
    """
    features = tf.cast(features, tf.float32)
    labels = _flat_labels(labels)
    centers_batch = tf.gather(centers, labels)
    per_example = tf.reduce_mean(tf.square(features - centers_batch), axis=1)
    loss = _batch_mean(per_example, global_batch_size)
    values = tf.stop_gradient((1.0 - alfa) * (centers_batch - features))
    delta = tf.IndexedSlices(values, labels, dense_shape=tf.shape(centers, out_type=tf.int32))
    return loss, delta


def apply_center_update(centers, delta):
    """centers -= delta (scatter_sub: duplicate indices accumulate)."""
    return centers.scatter_sub(delta)


class CenterLoss(keras.layers.Layer):
    """Holds the original's non-trainable `centers` variable ([nrof_classes, embedding_size],
    zeros). Calling it with (features, labels) returns center_loss's (loss, delta).

    The variable is created outside the layer's name scope, so its path is `centers`, the
    original variable name. Being non-trainable, a GradientTape watches it only when told to
    (the original's optimizer stepped it). Under tf.distribute the trainer all-reduces delta
    (SUM) in replica context and applies it there: every replica's copy gets the same update.
    """

    def __init__(self, nrof_classes, embedding_size, alfa, **kwargs):
        super().__init__(**kwargs)
        self.nrof_classes = nrof_classes
        self.embedding_size = embedding_size
        self.alfa = alfa
        self.centers = keras.Variable(tf.zeros([nrof_classes, embedding_size], tf.float32), trainable=False,
                                      autocast=False, name='centers')

    def call(self, features, labels, global_batch_size=None):
        return center_loss(features, labels, self.centers.value, self.alfa, global_batch_size)

    def apply_update(self, delta):
        return apply_center_update(self.centers.value, delta)

    def get_config(self):
        return {**super().get_config(), 'nrof_classes': self.nrof_classes, 'embedding_size': self.embedding_size,
                'alfa': self.alfa}


@keras.saving.register_keras_serializable(package='facenet')
class SoftmaxHead(keras.layers.Dense):
    """The original `Logits` layer: prelogits @ weights + biases, weights xavier-initialised with
    slim's weight decay, biases zero and not regularised. `labels` is accepted and ignored so
    that every head is called alike."""

    def __init__(self, nrof_classes, weight_decay=0.0, name='Logits', dtype='float32', **kwargs):
        super().__init__(nrof_classes, kernel_initializer='glorot_uniform', bias_initializer='zeros',
                         kernel_regularizer=l2_regularizer(weight_decay), name=name, dtype=dtype, **kwargs)
        self.weight_decay = weight_decay

    def call(self, inputs, labels=None):
        return super().call(inputs)

    def get_config(self):
        config = super().get_config()
        return {'nrof_classes': config['units'], 'weight_decay': self.weight_decay, 'name': config['name'],
                'dtype': config['dtype'], 'trainable': config['trainable']}


class _MarginHead(keras.layers.Layer):
    """cos(theta) between the L2-normalised features and class weights, scaled by s, with the
    margin applied to each example's target class when labels are given (training and
    validation loss). Without labels (evaluation, inference) it returns s * cos(theta).
    Subclasses define target_logit(target_cos), the target class's logit before scaling."""

    def __init__(self, nrof_classes, margin_s, margin_m, weight_decay=0.0, name='Logits', dtype='float32', **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.nrof_classes = nrof_classes
        self.margin_s = float(margin_s)
        self.margin_m = float(margin_m)
        self.weight_decay = weight_decay

    def build(self, input_shape):
        self.kernel = self.add_weight(name='kernel', shape=(input_shape[-1], self.nrof_classes),
                                      initializer='glorot_uniform', regularizer=l2_regularizer(self.weight_decay))

    def cosine(self, inputs):
        """cos(theta), [batch, nrof_classes], kept inside [-1 + eps, 1 - eps]."""
        features = tf.math.l2_normalize(tf.cast(inputs, tf.float32), axis=1, epsilon=_NORMALIZE_EPSILON)
        weights = tf.math.l2_normalize(tf.cast(self.kernel, tf.float32), axis=0, epsilon=_NORMALIZE_EPSILON)
        return tf.clip_by_value(tf.matmul(features, weights), -1.0 + COS_EPSILON, 1.0 - COS_EPSILON)

    def call(self, inputs, labels=None):
        cos = self.cosine(inputs)
        if labels is None:
            return self.margin_s * cos
        labels = _flat_labels(labels)
        target_cos = tf.gather(cos, labels[:, None], batch_dims=1)
        is_target = tf.one_hot(labels, self.nrof_classes, on_value=True, off_value=False)
        return self.margin_s * tf.where(is_target, self.target_logit(target_cos), cos)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.nrof_classes)

    def get_config(self):
        return {**super().get_config(), 'nrof_classes': self.nrof_classes, 'margin_s': self.margin_s,
                'margin_m': self.margin_m, 'weight_decay': self.weight_decay}


@keras.saving.register_keras_serializable(package='facenet')
class ArcFaceHead(_MarginHead):
    """Additive angular margin: the target logit is cos(theta + m) = cos*cos(m) - sin*sin(m).

    cos(theta + m) stops falling once theta + m passes pi, so there (cos(theta) below
    cos(pi - m)) insightface uses cos(theta) - m*sin(m) instead, which keeps the target logit
    decreasing in theta; with easy_margin the margin applies only where cos(theta) > 0.
    """

    def __init__(self, nrof_classes, margin_s=64.0, margin_m=0.5, weight_decay=0.0, easy_margin=False, **kwargs):
        super().__init__(nrof_classes, margin_s, margin_m, weight_decay, **kwargs)
        self.easy_margin = easy_margin

    def target_logit(self, target_cos):
        m = self.margin_m
        sin = tf.sqrt(1.0 - tf.square(target_cos))
        cos_theta_plus_m = target_cos * math.cos(m) - sin * math.sin(m)
        if self.easy_margin:
            return tf.where(target_cos > 0.0, cos_theta_plus_m, target_cos)
        return tf.where(target_cos > math.cos(math.pi - m), cos_theta_plus_m, target_cos - m * math.sin(m))

    def get_config(self):
        return {**super().get_config(), 'easy_margin': self.easy_margin}


@keras.saving.register_keras_serializable(package='facenet')
class CosFaceHead(_MarginHead):
    """Additive cosine margin: the target logit is cos(theta) - m."""

    def __init__(self, nrof_classes, margin_s=64.0, margin_m=0.35, weight_decay=0.0, **kwargs):
        super().__init__(nrof_classes, margin_s, margin_m, weight_decay, **kwargs)

    def target_logit(self, target_cos):
        return target_cos - self.margin_m


def make_classifier_head(loss, nrof_classes, weight_decay, margin_s=None, margin_m=None):
    """The `Logits` layer for --loss: SoftmaxHead, ArcFaceHead or CosFaceHead. margin_s and
    margin_m default to MARGIN_DEFAULTS[loss]; they are refused for softmax."""
    if loss == 'softmax':
        if margin_s is not None or margin_m is not None:
            raise ValueError('--margin_s and --margin_m apply to --loss arcface or cosface, not softmax')
        return SoftmaxHead(nrof_classes, weight_decay)
    if loss not in MARGIN_DEFAULTS:
        raise ValueError(f'unknown loss {loss!r}: use one of {", ".join(LOSSES)}')
    default_s, default_m = MARGIN_DEFAULTS[loss]
    head = ArcFaceHead if loss == 'arcface' else CosFaceHead
    return head(nrof_classes, default_s if margin_s is None else margin_s, default_m if margin_m is None else margin_m,
                weight_decay)
