"""The original's five optimizers (`facenet.train`: ADAGRAD, ADADELTA, ADAM, RMSPROP, MOM) as Keras 3
optimizers with TF1's update rules, slot initial values and sparse-gradient rules.

Keras' built-in optimizers differ from TF1 in ways that change the numbers: Adagrad adds an epsilon
under the square root, RMSprop's mean square starts at 0 instead of 1, SGD's momentum accumulates
lr * g (so a learning rate that changes acts differently), Adam computes beta^t afresh instead of
TF1's running float32 product, and Adadelta and RMSprop decay the slots of every row for a sparse
gradient. These classes keep Keras' apply machinery (tf.distribute all-reduce and per-replica
`extended.update`, `iterations`, a learning-rate variable settable inside `tf.function`) and replace
only the update step.

A dense gradient is applied, by default, with the TF kernel the TF1 optimizer itself ran
(`tf.raw_ops.ResourceApplyAdagrad`, `...Adadelta`, `...Adam`, `...RMSProp`, `...CenteredRMSProp`,
`...Momentum`): one fused pass over the variable and its slots instead of about seven element-wise
ops, each reading and writing the whole tensor (on Inception-ResNet-v1's 23M weights that is most of
the update's memory traffic). `fused=False` runs the same rule as element-wise TensorFlow ops
(`_rule`), which is also the rule a sparse gradient's rows get; both agree with the TF1 reference
to float32 rounding.

Sparse gradients (`tf.IndexedSlices`, e.g. from `tf.gather` on the center-loss `centers`) follow TF1:
duplicate indices are summed first; Adagrad, Adadelta, RMSProp and Momentum then update only the listed
rows of the variable and its slots, while Adam decays `m` and `v` on all rows, adds the new gradient
rows, and updates every row of the variable.
"""
import keras
import tensorflow as tf

OPTIMIZERS = ('ADAGRAD', 'ADADELTA', 'ADAM', 'RMSPROP', 'MOM')

# TF1's `use_locking` only serialises concurrent writes to one variable; updates inside a Keras apply
# are already ordered, so the argument is accepted (the references record TF1 constructor values) and
# has no effect.
_TF1_IGNORED_ARGUMENTS = ('use_locking',)


def _tf_variable(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


def _sum_duplicate_indices(values, indices):
    """TF1's `_deduplicate_indexed_slices`: one row per distinct index, duplicates summed."""
    unique_indices, positions = tf.unique(indices)
    summed = tf.math.unsorted_segment_sum(values, positions, tf.shape(unique_indices)[0])
    return summed, unique_indices


class TF1Optimizer(keras.optimizers.Optimizer):
    """Base of the TF1-rule optimizers.

    Subclasses list their slots in `SLOTS` as (TF1 slot name, initial value) in TF1's checkpoint
    order, and give the element-wise rule in `_rule(slots, gradient, learning_rate)`, which returns
    the new slot values (same order) and the amount subtracted from the variable. A dense gradient
    goes to `_fused_apply(variable, slots, gradient, learning_rate)` (TF's apply kernel) unless
    `fused` is False, when the rule runs on whole tensors; a sparse one, by default, to the gathered
    rows only.
    """
    SLOTS = ()
    TF1_NAME = None  # the TF1 optimizer's default name: slot variables are `<var>/<TF1_NAME>[_i]`
    HYPERPARAMETERS = ()

    def __init__(self, learning_rate, name=None, fused=True):
        super().__init__(learning_rate=float(learning_rate), name=name)
        self.fused = bool(fused)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._slots = {}
        for slot_name, initial_value in self.SLOTS:
            initializer = keras.initializers.Constant(self._slot_initial_value(initial_value))
            self._slots[slot_name] = [
                self.add_variable_from_reference(variable, name=slot_name, initializer=initializer)
                for variable in var_list]

    def _slot_initial_value(self, initial_value):
        return getattr(self, initial_value) if isinstance(initial_value, str) else initial_value

    # Not TF1's names get_slot/get_slot_names: tf.train.Checkpoint takes any object with a
    # get_slot_names method for a TF1 optimizer and refuses to save its (Keras-tracked) slots.
    def slot_names(self):
        return [slot_name for slot_name, _ in self.SLOTS]

    def slot(self, variable, slot_name):
        """The slot `slot_name` (a TF1 slot name, see `slot_names`) of `variable`."""
        return self._slots[slot_name][self._get_variable_index(variable)]

    def tf1_slot_names(self, variable_name):
        """{slot name: the TF1 checkpoint name of that slot for the variable named `variable_name`}."""
        return {slot_name: f'{variable_name}/{self.TF1_NAME}' + (f'_{i}' if i else '')
                for i, (slot_name, _) in enumerate(self.SLOTS)}

    def update_step(self, gradient, variable, learning_rate):
        variable = _tf_variable(variable)
        learning_rate = tf.cast(learning_rate, variable.dtype)
        slots = [_tf_variable(self.slot(variable, name)) for name in self.slot_names()]
        if isinstance(gradient, tf.IndexedSlices):
            values, indices = _sum_duplicate_indices(
                tf.cast(gradient.values, variable.dtype), gradient.indices)
            self._sparse_update(variable, slots, values, indices, learning_rate)
        else:
            self._dense_update(variable, slots, tf.cast(gradient, variable.dtype), learning_rate)

    def _dense_update(self, variable, slots, gradient, learning_rate):
        if self.fused:
            self._fused_apply(variable, slots, gradient, learning_rate)
            return
        new_slots, delta = self._rule([slot.read_value() for slot in slots], gradient, learning_rate)
        for slot, value in zip(slots, new_slots):
            slot.assign(value)
        variable.assign_sub(delta)

    def _sparse_update(self, variable, slots, values, indices, learning_rate):
        new_rows, delta = self._rule([tf.gather(slot, indices) for slot in slots], values,
                                     learning_rate)
        for slot, rows in zip(slots, new_rows):
            slot.scatter_update(tf.IndexedSlices(rows, indices))
        variable.scatter_sub(tf.IndexedSlices(delta, indices))

    def _rule(self, slots, gradient, learning_rate):
        raise NotImplementedError

    def _fused_apply(self, variable, slots, gradient, learning_rate):
        raise NotImplementedError

    def _constant(self, value, like):
        return tf.constant(value, like.dtype)

    def get_config(self):
        config = super().get_config()
        config = {'name': config['name'], 'learning_rate': config['learning_rate'], 'fused': self.fused}
        config.update({name: getattr(self, name) for name in self.HYPERPARAMETERS})
        return config


@keras.saving.register_keras_serializable(package='facenet_tf2')
class TF1Adagrad(TF1Optimizer):
    """`tf.compat.v1.train.AdagradOptimizer`: accum += g^2; var -= lr * g / sqrt(accum), no epsilon."""
    SLOTS = (('accumulator', 'initial_accumulator_value'),)
    TF1_NAME = 'Adagrad'
    HYPERPARAMETERS = ('initial_accumulator_value',)

    def __init__(self, learning_rate, initial_accumulator_value=0.1, name=None, fused=True):
        super().__init__(learning_rate, name=name, fused=fused)
        if initial_accumulator_value <= 0.0:
            raise ValueError(f'initial_accumulator_value must be positive, got '
                             f'{initial_accumulator_value}')
        self.initial_accumulator_value = float(initial_accumulator_value)

    def _rule(self, slots, gradient, learning_rate):
        accumulator = slots[0] + tf.square(gradient)
        return [accumulator], gradient * learning_rate * tf.math.rsqrt(accumulator)

    def _fused_apply(self, variable, slots, gradient, learning_rate):
        tf.raw_ops.ResourceApplyAdagrad(var=variable.handle, accum=slots[0].handle, lr=learning_rate, grad=gradient)


@keras.saving.register_keras_serializable(package='facenet_tf2')
class TF1Adadelta(TF1Optimizer):
    """`tf.compat.v1.train.AdadeltaOptimizer` (the original passes rho=0.9, epsilon=1e-6)."""
    SLOTS = (('accum', 0.0), ('accum_update', 0.0))
    TF1_NAME = 'Adadelta'
    HYPERPARAMETERS = ('rho', 'epsilon')

    def __init__(self, learning_rate, rho=0.95, epsilon=1e-8, name=None, fused=True):
        super().__init__(learning_rate, name=name, fused=fused)
        self.rho = float(rho)
        self.epsilon = float(epsilon)

    def _rule(self, slots, gradient, learning_rate):
        accum, accum_update = slots
        rho = tf.cast(self.rho, gradient.dtype)
        epsilon = tf.cast(self.epsilon, gradient.dtype)
        accum = accum * rho + tf.square(gradient) * (1.0 - rho)
        update = tf.sqrt(accum_update + epsilon) * tf.math.rsqrt(accum + epsilon) * gradient
        accum_update = accum_update * rho + tf.square(update) * (1.0 - rho)
        return [accum, accum_update], update * learning_rate

    def _fused_apply(self, variable, slots, gradient, learning_rate):
        tf.raw_ops.ResourceApplyAdadelta(var=variable.handle, accum=slots[0].handle, accum_update=slots[1].handle,
                                         lr=learning_rate, rho=self._constant(self.rho, gradient),
                                         epsilon=self._constant(self.epsilon, gradient), grad=gradient)


@keras.saving.register_keras_serializable(package='facenet_tf2')
class TF1Adam(TF1Optimizer):
    """`tf.compat.v1.train.AdamOptimizer` (the original passes epsilon=0.1): the step size is
    lr * sqrt(1 - beta2^t) / (1 - beta1^t) and epsilon is added to sqrt(v), t counting applies."""
    SLOTS = (('m', 0.0), ('v', 0.0))
    TF1_NAME = 'Adam'
    HYPERPARAMETERS = ('beta1', 'beta2', 'epsilon')

    def __init__(self, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-8, name=None, fused=True):
        super().__init__(learning_rate, name=name, fused=fused)
        self.beta1 = float(beta1)
        self.beta2 = float(beta2)
        self.epsilon = float(epsilon)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        # TF1 keeps beta^t as two variables multiplied by beta once per apply; beta ** t computed
        # afresh differs from that float32 product by up to 1e-5 relative in the step size.
        self._beta_powers = [
            self.add_variable((), initializer=keras.initializers.Constant(beta), name=name,
                              aggregation='only_first_replica')
            for name, beta in (('beta1_power', self.beta1), ('beta2_power', self.beta2))]

    def apply(self, grads, trainable_variables=None):
        super().apply(grads, trainable_variables)
        if len(grads):  # Keras' apply is a no-op for an empty list
            for power, beta in zip(self._beta_powers, (self.beta1, self.beta2)):
                power.assign(power * beta)

    def beta_powers(self):
        """TF1's `beta1_power` and `beta2_power` variables: beta^t for the next apply, t from 1."""
        return tuple(self._beta_powers)

    def _step_size(self, learning_rate):
        beta1_power, beta2_power = (tf.cast(power, learning_rate.dtype) for power in self._beta_powers)
        return learning_rate * tf.sqrt(1.0 - beta2_power) / (1.0 - beta1_power)

    def _rule(self, slots, gradient, learning_rate):
        m, v = slots
        beta1 = tf.cast(self.beta1, gradient.dtype)
        beta2 = tf.cast(self.beta2, gradient.dtype)
        m = m + (gradient - m) * (1.0 - beta1)
        v = v + (tf.square(gradient) - v) * (1.0 - beta2)
        step = self._step_size(learning_rate)
        return [m, v], m * step / (tf.sqrt(v) + tf.cast(self.epsilon, gradient.dtype))

    def _fused_apply(self, variable, slots, gradient, learning_rate):
        beta1_power, beta2_power = (tf.cast(power, gradient.dtype) for power in self._beta_powers)
        tf.raw_ops.ResourceApplyAdam(var=variable.handle, m=slots[0].handle, v=slots[1].handle,
                                     beta1_power=beta1_power, beta2_power=beta2_power, lr=learning_rate,
                                     beta1=self._constant(self.beta1, gradient),
                                     beta2=self._constant(self.beta2, gradient),
                                     epsilon=self._constant(self.epsilon, gradient), grad=gradient)

    def _sparse_update(self, variable, slots, values, indices, learning_rate):
        # TF1's AdamOptimizer._apply_sparse_shared: every row of m and v decays, the gradient rows are
        # added, and every row of the variable moves.
        m, v = slots
        beta1 = tf.cast(self.beta1, values.dtype)
        beta2 = tf.cast(self.beta2, values.dtype)
        m.assign(m * beta1)
        m.scatter_add(tf.IndexedSlices(values * (1.0 - beta1), indices))
        v.assign(v * beta2)
        v.scatter_add(tf.IndexedSlices(values * values * (1.0 - beta2), indices))
        step = self._step_size(learning_rate)
        variable.assign_sub(step * m / (tf.sqrt(v) + tf.cast(self.epsilon, values.dtype)))


@keras.saving.register_keras_serializable(package='facenet_tf2')
class TF1RMSProp(TF1Optimizer):
    """`tf.compat.v1.train.RMSPropOptimizer` (the original passes decay=0.9, momentum=0.9,
    epsilon=1.0): the mean square starts at 1, the momentum accumulates lr * g / rms. centered=True
    is TF1's ApplyCenteredRMSProp: a mean gradient mg (starting at 0) is kept too and the
    denominator is sqrt(ms - mg^2 + epsilon); its slots are in TF1's order rms, mg, momentum."""
    SLOTS = (('rms', 1.0), ('momentum', 0.0))
    TF1_NAME = 'RMSProp'
    HYPERPARAMETERS = ('decay', 'momentum', 'epsilon', 'centered')

    def __init__(self, learning_rate, decay=0.9, momentum=0.0, epsilon=1e-10, centered=False, name=None,
                 fused=True):
        super().__init__(learning_rate, name=name, fused=fused)
        self.decay = float(decay)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.centered = bool(centered)
        if self.centered:
            self.SLOTS = (('rms', 1.0), ('mg', 0.0), ('momentum', 0.0))

    def _rule(self, slots, gradient, learning_rate):
        mean_square, momentum = slots[0], slots[-1]
        decay = tf.cast(self.decay, gradient.dtype)
        mean_square = mean_square + (tf.square(gradient) - mean_square) * (1.0 - decay)
        denominator = mean_square
        if self.centered:
            mean_gradient = slots[1] + (gradient - slots[1]) * (1.0 - decay)
            denominator = mean_square - tf.square(mean_gradient)
        momentum = (momentum * tf.cast(self.momentum, gradient.dtype) + learning_rate * gradient
                    * tf.math.rsqrt(denominator + tf.cast(self.epsilon, gradient.dtype)))
        new_slots = [mean_square, mean_gradient, momentum] if self.centered else [mean_square, momentum]
        return new_slots, momentum

    def _fused_apply(self, variable, slots, gradient, learning_rate):
        hyper = {'lr': learning_rate, 'rho': self._constant(self.decay, gradient),
                 'momentum': self._constant(self.momentum, gradient),
                 'epsilon': self._constant(self.epsilon, gradient), 'grad': gradient}
        if self.centered:
            tf.raw_ops.ResourceApplyCenteredRMSProp(var=variable.handle, mg=slots[1].handle, ms=slots[0].handle,
                                                    mom=slots[2].handle, **hyper)
        else:
            tf.raw_ops.ResourceApplyRMSProp(var=variable.handle, ms=slots[0].handle, mom=slots[1].handle, **hyper)


@keras.saving.register_keras_serializable(package='facenet_tf2')
class TF1Momentum(TF1Optimizer):
    """`tf.compat.v1.train.MomentumOptimizer` (the original passes momentum=0.9, use_nesterov=True):
    accum = momentum * accum + g; var -= lr * accum, or lr * (g + momentum * accum) with Nesterov."""
    SLOTS = (('momentum', 0.0),)
    TF1_NAME = 'Momentum'
    HYPERPARAMETERS = ('momentum', 'use_nesterov')

    def __init__(self, learning_rate, momentum, use_nesterov=False, name=None, fused=True):
        super().__init__(learning_rate, name=name, fused=fused)
        self.momentum = float(momentum)
        self.use_nesterov = bool(use_nesterov)

    def _rule(self, slots, gradient, learning_rate):
        momentum = tf.cast(self.momentum, gradient.dtype)
        accumulation = slots[0] * momentum + gradient
        if self.use_nesterov:
            delta = gradient * learning_rate + accumulation * momentum * learning_rate
        else:
            delta = accumulation * learning_rate
        return [accumulation], delta

    def _fused_apply(self, variable, slots, gradient, learning_rate):
        tf.raw_ops.ResourceApplyMomentum(var=variable.handle, accum=slots[0].handle, lr=learning_rate, grad=gradient,
                                         momentum=self._constant(self.momentum, gradient),
                                         use_nesterov=self.use_nesterov)


# facenet.train's constructor values for each --optimizer choice.
_ORIGINAL = {
    'ADAGRAD': (TF1Adagrad, {}),
    'ADADELTA': (TF1Adadelta, {'rho': 0.9, 'epsilon': 1e-6}),
    'ADAM': (TF1Adam, {'beta1': 0.9, 'beta2': 0.999, 'epsilon': 0.1}),
    'RMSPROP': (TF1RMSProp, {'decay': 0.9, 'momentum': 0.9, 'epsilon': 1.0}),
    'MOM': (TF1Momentum, {'momentum': 0.9, 'use_nesterov': True}),
}


def create_optimizer(name, learning_rate=0.1, fused=True, **hparams):
    """The optimizer `facenet.train` builds for `--optimizer name`, with the original's constructor
    values unless overridden by TF1 constructor keywords (e.g. a reference's `optimizer_hparams`).
    Set the learning rate later with `optimizer.learning_rate = value` (a variable assignment; inside a
    tf.function pass the value as a tensor, a Python float retraces per value). Call
    `optimizer.build(var_list)` before the first traced step: slots created while tracing make
    tf.function trace twice and fail under MirroredStrategy. A non-trainable variable in the list (the
    original's `centers`) is stepped like the others; its gradient needs `tape.watch`, since a tape
    only watches trainable variables by itself. `fused` (default) applies dense gradients with TF's
    apply kernels, False with the element-wise rule (the module docstring says how they differ)."""
    if name not in _ORIGINAL:
        raise ValueError(f'unknown optimizer {name!r}, use one of {", ".join(OPTIMIZERS)}')
    cls, defaults = _ORIGINAL[name]
    hparams = {key: value for key, value in hparams.items() if key not in _TF1_IGNORED_ARGUMENTS}
    unknown = sorted(set(hparams) - set(cls.HYPERPARAMETERS) - {'name'})
    if unknown:
        raise ValueError(f'{name} does not take {", ".join(unknown)}; it takes '
                         f'{", ".join(cls.HYPERPARAMETERS + _TF1_IGNORED_ARGUMENTS + ("name",))}')
    return cls(learning_rate, fused=fused, **{**defaults, **hparams})


# Short names that TF1 write-ups give the slots (a reference's `optimizer_hparams` `ms_init`,
# `mom_init`, ...) -> the slot names of the classes above.
_SLOT_ALIASES = {'ms': 'rms', 'mom': 'momentum', 'accum': 'accumulator'}


def split_tf1_hparams(name, hparams):
    """(constructor keywords for create_optimizer(name), {other key: value}) of a reference's
    `optimizer_hparams`: TF1 constructor arguments this port takes, and the rest (descriptions
    such as the slots' initial values, `ms_init`, `m_init`, `beta1_power_init`, or `cls`)."""
    if name not in _ORIGINAL:
        raise ValueError(f'unknown optimizer {name!r}, use one of {", ".join(OPTIMIZERS)}')
    taken = set(_ORIGINAL[name][0].HYPERPARAMETERS) | set(_TF1_IGNORED_ARGUMENTS) | {'name'}
    return ({key: value for key, value in hparams.items() if key in taken},
            {key: value for key, value in hparams.items() if key not in taken})


def initial_value(optimizer, variable, key):
    """The starting value this optimizer gives what `key` names (`<slot>_init`: the slot of
    `variable`, by TF1 slot name or its short name; `beta1_power_init` / `beta2_power_init`: Adam's
    powers), as an array, read from the built optimizer before its first apply; None when the
    optimizer has no such thing."""
    if not key.endswith('_init'):
        return None
    slot_name = key[:-len('_init')]
    if isinstance(optimizer, TF1Adam) and slot_name in ('beta1_power', 'beta2_power'):
        return optimizer.beta_powers()[slot_name == 'beta2_power'].numpy()
    names = optimizer.slot_names()
    if slot_name not in names:  # Adadelta's own `accum` is taken before the alias
        slot_name = _SLOT_ALIASES.get(slot_name)
    if slot_name not in names:
        return None
    return optimizer.slot(variable, slot_name).numpy()
