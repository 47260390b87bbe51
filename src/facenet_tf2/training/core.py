"""The training core both trainers share: the network, the optimizer, the EMA, the train step.

`Trainer` holds what a training run updates (the Keras embedding network, the script's extra
modules such as the classifier head and the centres, the optimizer, the weights' moving average,
the global step) and builds the train step from the script's loss: one tf.function, traced once,
run on every replica of a tf.distribute strategy. A step does what the original's train op did,
in its order:

1. the EMA moves towards the weights as they are before the step (ema.py);
2. forward pass in training mode (BatchNorm on batch statistics, its moving averages updated
   with the unbiased variance: nets.layers.SlimBatchNormalization);
3. the script's loss: per-replica terms scaled by the global batch size, so the replicas' sum is
   the single-device value; weight decay (slim's wd * sum(w**2) / 2) added once;
4. the script's own updates (the centre-loss scatter update) and then the optimizer's update of
   every variable with a gradient, including non-trainable ones the script adds (the original
   passed tf.global_variables() to the optimizer, so it also stepped `centers`);
5. global step + 1.

Dropout masks are stateless draws seeded by (seed, global step, layer, replica) (dropout_seed),
and the input's augmentations by (seed, stream position) (data.py), so a resumed run repeats
the uninterrupted run's steps exactly.
"""
import functools
import importlib
import os

import keras
import tensorflow as tf

from facenet_tf2.nets.layers import SeededDropout, SlimBatchNormalization, original_name
from facenet_tf2.training.ema import ExponentialMovingAverage
from facenet_tf2.training.optimizers import create_optimizer
from facenet_tf2.weights import assign_weights, model_scope


def make_strategy(kind='auto'):
    """The tf.distribute strategy for `kind`: 'auto' (MultiWorkerMirroredStrategy when TF_CONFIG
    names a cluster, MirroredStrategy over several visible GPUs, else one device), 'none',
    'mirrored' or 'multi_worker'."""
    if kind == 'auto':
        if os.environ.get('TF_CONFIG'):
            kind = 'multi_worker'
        elif len(tf.config.list_logical_devices('GPU')) > 1:
            kind = 'mirrored'
        else:
            kind = 'none'
    if kind == 'none':
        return tf.distribute.get_strategy()
    if kind == 'mirrored':
        gpus = tf.config.list_logical_devices('GPU')
        devices = [d.name for d in gpus] if gpus else [d.name for d in tf.config.list_logical_devices('CPU')]
        return tf.distribute.MirroredStrategy(devices)
    if kind == 'multi_worker':
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f'unknown distribution {kind!r}: use auto, none, mirrored or multi_worker')


def import_network(model_def):
    """The module of `--model_def` (e.g. models.inception_resnet_v1); it must have build_model."""
    module = importlib.import_module(model_def)
    if not hasattr(module, 'build_model'):
        raise ValueError(f'{model_def} has no build_model(image_size, dropout_keep_prob, bottleneck_layer_size, '
                         'weight_decay)')
    return module


def batch_norm_layers(model):
    return [layer for layer in model._flatten_layers(include_self=False)  # pylint: disable=protected-access
            if isinstance(layer, SlimBatchNormalization)]


def seeded_dropout_layers(model):
    return [layer for layer in model._flatten_layers(include_self=False)  # pylint: disable=protected-access
            if isinstance(layer, SeededDropout)]


# Tells the dropout seeds from the input pipeline's, which are (seed, stream position).
_DROPOUT_STREAM = 0x64726F70


def _tf_variable(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


def _is_float(variable):
    return tf.as_dtype(variable.dtype).is_floating


class Trainer:
    """What a training run updates, and its train step.

    network: the Keras embedding network (images -> prelogits). modules: {name: Keras layer} the
    script trains beside it (the `Logits` head; `CenterLoss` whose non-trainable `centers` the
    optimizer steps too). Build inside strategy.scope() is done here: pass builders (callables
    returning the layer), so every variable is created under the strategy. fused_updates: the
    optimizer and the EMA update each variable with one TF apply kernel (default); False runs their
    rules as element-wise ops (the step before the fused kernels, kept to time against).
    """

    def __init__(self, strategy, build_network, modules=None, optimizer='ADAGRAD', moving_average_decay=0.9999,
                 optimizer_hparams=None, sync_batch_norm=False, loss_scale=False, seed=None, fused_updates=True,
                 jit_compile=False):
        self.strategy = strategy
        with strategy.scope():
            self.network = build_network()
            self.modules = {name: build() for name, build in (modules or {}).items()}
            self.optimizer = create_optimizer(optimizer, 0.0, fused=fused_updates, **(optimizer_hparams or {}))
            if loss_scale:  # float16 compute: dynamic loss scaling keeps small gradients representable
                self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
            self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name='global_step')
        for layer in batch_norm_layers(self.network):
            layer.synchronized = bool(sync_batch_norm)
        self.seed = int(seed or 0)
        for index, layer in enumerate(seeded_dropout_layers(self.network)):
            layer.step_seed = functools.partial(self.dropout_seed, index)
        self.moving_average_decay = moving_average_decay
        self.fused_updates = bool(fused_updates)
        self.jit_compile = bool(jit_compile)
        self.ema = None
        self._step_functions = {}

    # -- variables ---------------------------------------------------------------------------
    def build(self, embedding_size):
        """Creates every variable (the modules see prelogits of `embedding_size`), the optimizer
        slots and the EMA shadows; call after the network is built, before loading weights."""
        with self.strategy.scope():
            for module in self.modules.values():
                if not module.built:
                    module.build((None, embedding_size))
            self.optimizer.build(self.optimized_variables())
            self.ema = ExponentialMovingAverage(self.averaged_variables(), self.moving_average_decay,
                                                fused=self.fused_updates)

    def trained_modules(self):
        return [self.network, *self.modules.values()]

    def optimized_variables(self):
        """Every variable the optimizer steps: trainable ones plus the modules' extra ones
        (`optimized_variables()` of a module, e.g. the centres)."""
        variables = list(self.network.trainable_variables)
        for module in self.modules.values():
            variables += list(module.trainable_variables)
            variables += list(getattr(module, 'optimized_variables', lambda: [])())
        return variables

    def averaged_variables(self):
        """What the original's EMA tracked: its TRAINABLE_VARIABLES, which held the BatchNorm
        moving statistics too; not the centres."""
        variables = [v for v in self.network.weights if _is_float(v)]
        for module in self.modules.values():
            if not hasattr(module, 'optimized_variables'):
                variables += [v for v in module.weights if _is_float(v)]
        return variables

    def named_variables(self):
        """{original variable name: variable} of the network and the modules (the centres are
        `centers`, the head's weights `Logits/weights`)."""
        scope = model_scope(self.network)
        names = {original_name(scope, v.path): v for v in self.network.weights if _is_float(v)}
        for module in self.modules.values():
            names.update({original_name('', v.path): v for v in module.weights if _is_float(v)})
        return names

    def shadow_of(self, variable):
        """The EMA shadow of `variable` (None when it is not averaged)."""
        for candidate, shadow in zip(self.ema.averaged, self.ema.shadows):
            if candidate is variable:
                return shadow
        return None

    def load_network_weights(self, weights, source):
        """Sets the network from {original name: array} (e.g. a pretrained model) and restarts
        the EMA shadows from them, as the original's shadows started at the restored values."""
        assign_weights(self.network, weights, source)
        for shadow, variable in zip(self.ema.shadows, self.ema.averaged):
            shadow.assign(tf.convert_to_tensor(variable))

    def swap_averages(self):
        """Exchanges the weights and their EMA shadows (call again to undo): evaluation and export
        use the averaged weights, as the original's did."""
        for shadow, variable in zip(self.ema.shadows, self.ema.averaged):
            value = tf.convert_to_tensor(variable)
            variable.assign(tf.convert_to_tensor(shadow))
            shadow.assign(value)

    def dropout_seed(self, layer_index):
        """The stateless seed of a dropout mask: a function of (seed, global step, layer, replica)
        only, so a run resumed from a checkpoint draws the masks the uninterrupted run drew."""
        seed = tf.random.experimental.stateless_fold_in(tf.constant([self.seed, _DROPOUT_STREAM], tf.int64),
                                                        self.global_step)
        seed = tf.random.experimental.stateless_fold_in(seed, layer_index)
        context = tf.distribute.get_replica_context()
        replica = context.replica_id_in_sync_group if context is not None else 0
        return tf.random.experimental.stateless_fold_in(seed, tf.cast(replica, tf.int64))

    def distribute(self, dataset):
        """`dataset` as the step takes it: split over the strategy's replicas (tf.distribute
        prefetches each replica's part to its device), or, on one GPU without a distribution
        strategy, prefetched to that GPU so that no step waits for a host-to-device copy."""
        gpus = tf.config.list_logical_devices('GPU')
        if gpus and self.strategy is tf.distribute.get_strategy():  # the default strategy, outside any scope
            return dataset.apply(tf.data.experimental.prefetch_to_device(gpus[0].name, buffer_size=2))
        return self.strategy.experimental_distribute_dataset(dataset)

    # -- the step ----------------------------------------------------------------------------
    def set_learning_rate(self, learning_rate):
        getattr(self.optimizer, 'inner_optimizer', self.optimizer).learning_rate.assign(learning_rate)

    def train_step(self, loss_fn, details=False, input_spec=None):
        """The tf.function step(distributed_inputs, global_batch_size) -> {metric: value}.

        loss_fn(trainer, inputs, global_batch_size) runs in each replica under the gradient tape
        and returns (loss, metrics, updates): loss and metrics scaled so that their SUM over
        replicas is the global value (metrics named '*max' are reduced with MAX), updates a list
        of callables applied before the optimizer (e.g. the centre update). With details, the
        step also returns 'outputs' (whatever loss_fn put in metrics['outputs']) and 'gradients'
        {original name: gradient} (single device only: a checker's view of one step).
        input_spec: the distributed dataset's element_spec, for inputs whose batch size varies
        (a smaller last batch): the step is traced once for all of them.

        Steps are cached by what defines their trace (the loss function, details, input_spec and
        the network object), so asking again for the same step reuses its trace and anything else
        gets its own.
        """
        key = (loss_fn, details, repr(input_spec), self.network)
        if key not in self._step_functions:
            self._step_functions[key] = self._build_step(loss_fn, details, input_spec)
        traced = self._step_functions[key]

        def step(inputs, global_batch_size):
            # A tensor, so that a smaller last batch does not trace the step again.
            return traced(inputs, tf.constant(global_batch_size, tf.float32))
        step.tracing_count = traced.experimental_get_tracing_count
        return step

    def _build_step(self, loss_fn, details, input_spec=None):
        strategy = self.strategy
        variables = self.optimized_variables()
        # The tape watches trainable variables by itself; others (the centres) by their tf.Variable.
        sources = [v if v.trainable else _tf_variable(v) for v in variables]
        watched = [source for source, v in zip(sources, variables) if not v.trainable]
        names = {id(v): name for name, v in self.named_variables().items()}

        def replica_step(inputs, global_batch_size):
            with tf.GradientTape() as tape:
                tape.watch(watched)
                loss, metrics, updates = loss_fn(self, inputs, global_batch_size)
                with tf.name_scope('weight_decay'):
                    terms = [tf.cast(term, tf.float32) for module in self.trained_modules()
                             for term in module.losses]
                    replicas = tf.distribute.get_replica_context().num_replicas_in_sync
                    regularization = tf.add_n(terms) / replicas if terms else tf.constant(0.0)
                total = loss + regularization
                scaled = self.optimizer.scale_loss(total) if hasattr(self.optimizer, 'inner_optimizer') else total
            gradients = tape.gradient(scaled, sources)
            for update in updates:
                update()
            self.optimizer.apply_gradients([(g, v) for g, v in zip(gradients, variables) if g is not None])
            outputs = metrics.pop('outputs', None)
            metrics = dict(metrics, loss=total, weight_decay=regularization)
            if details:
                metrics['outputs'] = outputs
                metrics['gradients'] = {names[id(v)]: g for g, v in zip(gradients, variables) if g is not None}
            return metrics

        def step(inputs, global_batch_size):
            self.ema.apply(self.global_step)
            per_replica = strategy.run(replica_step, args=(inputs, global_batch_size))
            results = {}
            for key, value in per_replica.items():
                if key in ('outputs', 'gradients'):
                    results[key] = value
                elif key.endswith('max'):  # tf.distribute reduces by SUM or MEAN only: gather, then max
                    results[key] = tf.reduce_max(strategy.gather(
                        strategy.run(lambda v: tf.reshape(v, [1]), args=(value,)), axis=0))
                else:
                    results[key] = strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
            self.global_step.assign_add(1)
            return results

        jit = True if self.jit_compile else None
        if input_spec is None:
            return tf.function(step, jit_compile=jit)
        return tf.function(step, input_signature=[input_spec, tf.TensorSpec([], tf.float32)], jit_compile=jit)

