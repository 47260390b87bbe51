"""Exponential moving average of the weights, with the original's (TF1 train op's) semantics.

The original built `tf.train.ExponentialMovingAverage(decay, global_step).apply(trainable_variables)`
beside the optimizer's update: every shadow starts at its variable's starting value, and each step
moves it towards the variable as it was *before* that step's update, with
decay = min(decay, (1 + step) / (10 + step)), step the global step before its increment
(../shared/reference/train_softmax pins this down). `apply` is called at the start of a train step.
"""
import tensorflow as tf


class ExponentialMovingAverage(tf.Module):
    """Shadows of `variables` (tf/Keras variables); `shadows[i]` follows `variables[i]`.

    fused: move each shadow with one kernel (`ResourceApplyGradientDescent`: shadow -= rate * delta,
    delta = shadow - variable), the same arithmetic as TF1's assign_moving_average without a pass
    that writes rate * delta out; False runs it as separate sub, mul and assign_sub ops (as do
    mirrored shadows under tf.distribute, whose assign_sub updates every replica's copy).
    """

    def __init__(self, variables, decay, fused=True):
        super().__init__(name='ExponentialMovingAverage')
        self.decay = float(decay)
        self.fused = bool(fused)
        self.averaged = list(variables)
        self.shadows = [tf.Variable(tf.convert_to_tensor(variable), trainable=False, name=_leaf(variable))
                        for variable in self.averaged]

    def apply(self, step):
        """Moves every shadow towards its variable's current value; `step` is the global step before
        this train step (an int tensor)."""
        with tf.name_scope('ExponentialMovingAverage'):
            step = tf.cast(step, tf.float32)
            decay = tf.minimum(self.decay, (1.0 + step) / (10.0 + step))
            for shadow, variable in zip(self.shadows, self.averaged):
                rate = tf.cast(1.0 - decay, shadow.dtype)
                delta = shadow - tf.cast(tf.convert_to_tensor(variable), shadow.dtype)
                if self.fused and not isinstance(shadow, tf.distribute.DistributedValues):
                    tf.raw_ops.ResourceApplyGradientDescent(var=shadow.handle, alpha=rate, delta=delta)
                else:
                    shadow.assign_sub(rate * delta)


def _leaf(variable):
    return getattr(variable, 'path', variable.name).replace('/', '_').replace(':', '_')
