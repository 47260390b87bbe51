"""Replays a reference of the original train_softmax.py training steps on this port's training core
and prints, for every quantity the reference recorded, its relative difference.

    python benchmarks/check_train_step.py ../shared/reference/train_softmax/reference_adagrad.json

A reference (see ../shared/reference/train_softmax/README.md) is a JSON (`config`,
`optimizer_hparams`, `steps`: the scalars of each step) and an .npz beside it with the same stem
(`inputs`, `labels`, `init/...` starting values, `step1/...` forward pass and gradients,
`after_stepK/<var>`, `final/<var>`, `final_ema/<var>`). The steps are run by the same Trainer,
softmax loss and optimizers that train_softmax.py uses; whatever optimizer, factors and subset of
recorded values a reference holds is replayed and compared. Exit status 1 when a loss differs by
more than --loss_tolerance (relative) or an array by more than --variable_tolerance relative to
its scale (norm-wise, |a - b| / |b|; the largest element-wise difference relative to the largest
value is printed beside it), 2 when the reference cannot be used.

Some quantities are not smooth functions of float32 rounding. The stem's step-1 gradient is the
clearest: a ReLU input or a max-pool tie that rounding moves across its kink sends a different
gradient back, and such changes add up over every layer above. Two correct float32 runs that sum
in a different order then differ by more than 1e-4: moving the inputs by one ulp moves that
gradient by about 1e-3, and TensorFlow's Eigen convolutions (TF_ENABLE_ONEDNN_OPTS=0) put it 7e-3
from the original's oneDNN ones. So the checker first measures each quantity's sensitivity on the
port itself: the same replay on the inputs moved by one float32 ulp (random signs, fixed seed). A
quantity is then judged against the larger of its tolerance and --sensitivity_factor times how far
that run moved it, and its line says so where that widens it (--sensitivity_factor 0: no probe run).
"""
import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / 'src'))

import tensorflow as tf  # noqa: E402

import keras  # noqa: E402

from facenet_tf2.model_io import load_keras_network  # noqa: E402
from facenet_tf2.training.core import Trainer, import_network, batch_norm_layers  # noqa: E402
from facenet_tf2.training.optimizers import initial_value, split_tf1_hparams  # noqa: E402
from facenet_tf2.training.softmax import softmax_loss, softmax_modules  # noqa: E402
from facenet_tf2.weights import model_weights  # noqa: E402

DEFAULT_SHARED = Path(os.environ.get('FACENET_SHARED', HERE.parent.parent / 'shared'))
DEFAULT_MODEL = DEFAULT_SHARED / 'models' / '20170512-110547' / '20170512-110547.pb'

# steps[k] scalar -> how to get it from the step's results and the config.
SCALARS = {
    'total_loss': lambda r, c: r['loss'],
    'cross_entropy_mean': lambda r, c: r['xent_loss'],
    'accuracy': lambda r, c: r['accuracy'],
    'weight_decay_sum': lambda r, c: r['weight_decay'],
    'prelogits_norm': lambda r, c: r['prelogits_norm'],
    'prelogits_norm_term': lambda r, c: r['prelogits_norm'] * c['prelogits_norm_loss_factor'],
    'center_loss': lambda r, c: r['center_loss'],
    'center_loss_term': lambda r, c: r['center_loss'] * c['center_loss_factor'],
    'reg_losses_sum': lambda r, c: (r['weight_decay'] + r['prelogits_norm'] * c['prelogits_norm_loss_factor']
                                    + r['center_loss'] * c['center_loss_factor']),
    'learning_rate': lambda r, c: r['learning_rate'],
    'global_step_after': lambda r, c: r['global_step'],
}
NOT_COMPARED = {'global_step_before', 'seconds'}  # the input side of a step, and wall time


class ReferenceError_(Exception):
    pass


def relative_difference(ours, reference):
    """(norm-wise relative difference |a - b| / |b| (Euclidean norms; for a scalar |a - b| / |b|),
    largest element-wise difference relative to the largest reference value)."""
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    if ours.shape != reference.shape:
        raise ReferenceError_(f'shape {ours.shape} where the reference has {reference.shape}')
    if not reference.size:
        return 0.0, 0.0
    scale, largest = np.linalg.norm(reference), np.max(np.abs(reference))
    norm_wise = np.linalg.norm(ours - reference) / scale if scale > 0 else np.linalg.norm(ours)
    element_wise = np.max(np.abs(ours - reference)) / largest if largest > 0 else np.max(np.abs(ours))
    return norm_wise, element_wise


def learning_rate(config, global_step):
    """The original's tf.train.exponential_decay(lr, global_step, decay_epochs * epoch_size,
    decay_factor, staircase=True)."""
    decay_steps = config.get('learning_rate_decay_epochs', 100) * config.get('epoch_size', 1000)
    return config['learning_rate'] * config.get('learning_rate_decay_factor', 1.0) ** (global_step // decay_steps)


def densify(values, indices, shape):
    dense = np.zeros(shape, np.float64)
    np.add.at(dense, np.asarray(indices), np.asarray(values, np.float64))
    return dense


class Checker:
    """Compares and prints. The judged figure is the norm-wise relative difference (the size of
    the difference against the size of the value); the element-wise one is printed beside it.
    moved: {quantity: the port's value in a run on one-ulp-moved inputs} (a Recorder's values); a
    quantity's tolerance is at least sensitivity_factor times how far that run moved it."""

    def __init__(self, loss_tolerance, variable_tolerance, moved=None, sensitivity_factor=0.0):
        self.loss_tolerance, self.variable_tolerance = loss_tolerance, variable_tolerance
        self.moved, self.sensitivity_factor = moved or {}, sensitivity_factor
        self.rows = []

    def compare(self, name, ours, reference, tolerance):
        note = ''
        if name in self.moved:
            sensitivity = relative_difference(self.moved[name], ours)[0]
            if self.sensitivity_factor * sensitivity > tolerance:
                tolerance = self.sensitivity_factor * sensitivity
                note = f': {self.sensitivity_factor:g}x its move {sensitivity:.2e} under a one-ulp input change'
        norm_wise, element_wise = relative_difference(ours, reference)
        ok = norm_wise <= tolerance
        self.rows.append((name, norm_wise, tolerance, ok))
        print(f'{"ok  " if ok else "FAIL"} {name:70s} {norm_wise:10.3e}  (element-wise {element_wise:9.2e}; '
              f'tolerance {tolerance:.3g}{note})', flush=True)

    def loss(self, name, ours, reference):
        self.compare(name, ours, reference, self.loss_tolerance)

    def array(self, name, ours, reference):
        self.compare(name, ours, reference, self.variable_tolerance)

    def missing(self, name, problem):
        self.rows.append((name, np.inf, 0.0, False))
        print(f'FAIL {name}: {problem}')

    @property
    def failures(self):
        return [row for row in self.rows if not row[3]]


class Recorder(Checker):
    """The probe run's checker: keeps every quantity's value (for Checker's `moved`), prints nothing."""

    def __init__(self, loss_tolerance, variable_tolerance):
        super().__init__(loss_tolerance, variable_tolerance)
        self.values = {}

    def compare(self, name, ours, reference, tolerance):
        relative_difference(ours, reference)  # the same shape checks as the checked run
        self.values[name] = np.asarray(ours, np.float64)

    def missing(self, name, problem):
        pass


def load_reference(json_path):
    json_path = Path(json_path)
    try:
        reference = json.loads(json_path.read_text())
    except (OSError, ValueError) as e:
        raise ReferenceError_(f'{json_path}: cannot read the reference JSON ({e})') from None
    npz_path = json_path.with_suffix('.npz')
    if not npz_path.exists():
        raise ReferenceError_(f'{npz_path}: the arrays of the reference are missing (expected beside the JSON)')
    arrays = dict(np.load(npz_path, allow_pickle=False))
    for key in ('config', 'steps'):
        if key not in reference:
            raise ReferenceError_(f'{json_path}: no `{key}` in the reference')
    for key in ('inputs', 'labels'):
        if key not in arrays:
            raise ReferenceError_(f'{npz_path}: no `{key}` array in the reference')
    return reference, arrays


def build_trainer(reference, arrays, pretrained_model):
    config = reference['config']
    nrof_classes = int(reference.get('nrof_classes') or arrays['init/Logits/weights'].shape[1])
    embedding_size = int(config.get('embedding_size', 128))
    network = import_network(config.get('model_def', 'models.inception_resnet_v1'))
    try:
        hparams, _ = split_tf1_hparams(config.get('optimizer', 'ADAGRAD'), reference.get('optimizer_hparams', {}))
    except ValueError as e:
        raise ReferenceError_(f'config.optimizer: {e}') from None
    trainer = Trainer(
        tf.distribute.get_strategy(),
        lambda: network.build_model(image_size=int(config.get('image_size', 160)),
                                    dropout_keep_prob=float(config.get('keep_probability', 1.0)),
                                    bottleneck_layer_size=embedding_size,
                                    weight_decay=float(config.get('weight_decay', 0.0))),
        softmax_modules(nrof_classes, embedding_size, float(config.get('weight_decay', 0.0)),
                        float(config.get('center_loss_alfa', 0.95))),
        optimizer=config.get('optimizer', 'ADAGRAD'), optimizer_hparams=hparams,
        moving_average_decay=float(config.get('moving_average_decay', 0.9999)))
    trainer.build(embedding_size)
    pretrained, _ = load_keras_network(str(pretrained_model))
    trainer.load_network_weights(model_weights(pretrained), str(pretrained_model))
    named = trainer.named_variables()
    for key, value in arrays.items():  # the starting values the reference chose (Logits, centres)
        if key.startswith('init/'):
            name = key[len('init/'):]
            if name not in named:
                raise ReferenceError_(f'the reference initialises {name}, which this network does not have')
            named[name].assign(value)
            shadow = trainer.shadow_of(named[name])
            if shadow is not None:
                shadow.assign(value)
    return trainer


class _BatchNormStatisticsKept:
    """Runs forward passes in training mode (batch statistics) and then puts every BatchNorm
    moving statistic back as it was, so that looking does not change the step being checked."""

    def __init__(self, network):
        self.variables = [v for layer in batch_norm_layers(network) for v in (layer.moving_mean, layer.moving_variance)]

    def __enter__(self):
        self.saved = [v.numpy() for v in self.variables]

    def __exit__(self, *exc):
        for variable, value in zip(self.variables, self.saved):
            variable.assign(value)


def bottleneck_batch_statistics(trainer, inputs):
    """Mean and unbiased variance of the Bottleneck's pre-BatchNorm output on `inputs` in training mode."""
    bottleneck = trainer.network.get_layer('Bottleneck')
    extractor = keras.Model(trainer.network.input, bottleneck.input)
    with _BatchNormStatisticsKept(trainer.network):
        pre_bn = np.asarray(extractor(inputs, training=True), np.float64) @ np.asarray(bottleneck.kernel, np.float64)
    return pre_bn.mean(axis=0), pre_bn.var(axis=0, ddof=1)


class _KinkAlignedNetwork:
    """The network with a few prelogits moved (without a gradient) to the reference's side of 0.

    The prelogits norm has |x| in it, whose derivative jumps at 0. A prelogit closer to 0 than the
    float32 rounding by which two runs of the forward pass may differ can come out on the other
    side of 0, and its derivative then has the other sign: one such value changes the backbone's
    step-1 gradients by ~1%, and the variables after 3 steps by ~3e-4, through no difference of
    semantics. Where the reference recorded the forward pass
    (step 1), the checker moves such ties to the reference's side, by less than the forward
    tolerance, and says how many it moved."""

    def __init__(self, network, correction):
        self.network, self.correction = network, tf.constant(correction, tf.float32)

    def __call__(self, images, training=None):
        return self.network(images, training=training) + tf.stop_gradient(self.correction)

    def __getattr__(self, name):  # everything else (variables, losses, name) is the network's
        return getattr(self.network, name)


def kink_ties(trainer, inputs, reference_prelogits, tolerance):
    """(correction, description) for the step-1 prelogits whose sign differs from the reference's
    while the reference value lies within `tolerance` (relative to the scale) of 0."""
    with _BatchNormStatisticsKept(trainer.network):
        ours = np.asarray(trainer.network(inputs, training=True), np.float64)
    reference = np.asarray(reference_prelogits, np.float64)
    ties = (np.sign(ours) != np.sign(reference)) & (np.abs(reference) <= tolerance * np.max(np.abs(reference)))
    correction = np.where(ties, reference - ours, 0.0)
    described = ', '.join(f'[{i},{j}] reference {reference[i, j]:.2g} port {ours[i, j]:.2g}'
                          for i, j in zip(*np.nonzero(ties)))
    return correction, described


def one_ulp_moved(inputs, seed=0):
    """`inputs` with every element moved by one float32 ulp, up or down at random (fixed seed)."""
    inputs = np.asarray(inputs, np.float32)
    up = np.random.default_rng(seed).random(inputs.shape) < 0.5
    return np.where(up, np.nextafter(inputs, np.float32(np.inf)), np.nextafter(inputs, np.float32(-np.inf)))


def check(reference, arrays, pretrained_model, checker, inputs=None, say=print):
    """Replays the reference's steps on the port and hands every recorded quantity to `checker`;
    inputs: the step's images instead of the reference's (the probe run's one-ulp-moved ones)."""
    config = reference['config']
    trainer = build_trainer(reference, arrays, pretrained_model)
    inputs = tf.constant(arrays['inputs'] if inputs is None else inputs, tf.float32)
    labels = tf.constant(arrays['labels'], tf.int32)
    batch_size = int(inputs.shape[0])
    if 'step1/bottleneck_preBN_mean' in arrays or 'step1/bottleneck_preBN_var_unbiased' in arrays:
        mean, variance = bottleneck_batch_statistics(trainer, inputs)
        for key, ours in (('step1/bottleneck_preBN_mean', mean), ('step1/bottleneck_preBN_var_unbiased', variance)):
            if key in arrays:
                checker.array(key, ours, arrays[key])
    check_optimizer_descriptions(reference, trainer, checker, say)
    loss_fn = softmax_loss(float(config.get('prelogits_norm_p', 1.0)),
                           float(config.get('prelogits_norm_loss_factor', 0.0)),
                           float(config.get('center_loss_factor', 0.0)))
    step = trainer.train_step(loss_fn, details=True)
    aligned_network = None
    if 'step1/prelogits' in arrays and float(config.get('prelogits_norm_loss_factor', 0.0)):
        correction, described = kink_ties(trainer, inputs, arrays['step1/prelogits'], checker.variable_tolerance)
        if described:
            say(f'     step 1: prelogits at |x|\'s kink, moved to the reference\'s side of 0: {described}')
            aligned_network = _KinkAlignedNetwork(trainer.network, correction)
    named = trainer.named_variables()
    for k, recorded in enumerate(reference['steps'], start=1):
        global_step = int(trainer.global_step.numpy())
        rate = learning_rate(config, global_step)
        trainer.set_learning_rate(rate)
        if k == 1 and aligned_network is not None:
            network, trainer.network = trainer.network, aligned_network
            try:
                results = trainer.train_step(loss_fn, details=True)((inputs, labels), batch_size)
            finally:
                trainer.network = network
        else:
            results = step((inputs, labels), batch_size)
        values = {key: np.asarray(value) for key, value in results.items() if key not in ('outputs', 'gradients')}
        values.update(learning_rate=np.float32(rate), global_step=trainer.global_step.numpy())
        for key, expected in recorded.items():
            if key in SCALARS:
                checker.loss(f'steps[{k - 1}].{key}', SCALARS[key](values, config), expected)
            elif key not in NOT_COMPARED and not key.startswith('_'):
                say(f'     steps[{k - 1}].{key}: not a quantity this checker knows; not compared')
        if k == 1:
            outputs = {name: np.asarray(value) for name, value in results['outputs'].items()}
            outputs['embeddings'] = outputs['prelogits'] / np.sqrt(
                np.maximum(np.sum(outputs['prelogits'] ** 2, axis=1, keepdims=True), 1e-10))
            for name, ours in outputs.items():
                if f'step1/{name}' in arrays:
                    checker.array(f'step1/{name}', ours, arrays[f'step1/{name}'])
            gradients = results['gradients']
            for key in sorted(arrays):
                if not key.startswith('step1/grad/'):
                    continue
                name = key[len('step1/grad/'):]
                if name.endswith('/indices'):
                    continue
                if name.endswith('/values'):
                    name = name[:-len('/values')]
                    reference_grad = densify(arrays[key], arrays[f'step1/grad/{name}/indices'], named[name].shape)
                else:
                    reference_grad = arrays[key]
                gradient = gradients.get(name)
                if gradient is None:
                    checker.missing(key, f'this port computed no gradient for {name}')
                    continue
                if isinstance(gradient, tf.IndexedSlices):
                    gradient = densify(gradient.values.numpy(), gradient.indices.numpy(), named[name].shape)
                checker.array(key, np.asarray(gradient), reference_grad)
        compare_variables(checker, arrays, f'after_step{k}/', named, trainer)
    compare_variables(checker, arrays, 'final/', named, trainer)
    compare_variables(checker, arrays, 'final_ema/', named, trainer, averaged=True)


def check_optimizer_descriptions(reference, trainer, checker, say=print):
    """The reference's `optimizer_hparams` that are not constructor arguments: a slot's initial
    value (`ms_init`, `accum_init`, `m_init`, `beta1_power_init`, ...) is compared with the port's
    built optimizer before the first step; a key naming nothing the port has is reported, not checked."""
    _, described = split_tf1_hparams(reference['config'].get('optimizer', 'ADAGRAD'),
                                     reference.get('optimizer_hparams', {}))
    variable = trainer.optimized_variables()[0]
    for key, value in sorted(described.items()):
        ours = initial_value(trainer.optimizer, variable, key) if key != 'cls' else None
        if ours is None or not isinstance(value, (int, float)) or isinstance(value, bool):
            say(f'     optimizer_hparams.{key}: not something this port has; not checked')
            continue
        checker.loss(f'optimizer_hparams.{key}', ours, np.full(np.shape(ours), float(value)))


def compare_variables(checker, arrays, prefix, named, trainer, averaged=False):
    for key in sorted(arrays):
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        if name == 'global_step':
            checker.loss(key, trainer.global_step.numpy(), arrays[key])
            continue
        variable = named.get(name)
        if variable is None:
            checker.missing(key, f'no variable {name} in this port')
            continue
        if averaged:
            variable = trainer.shadow_of(variable)
            if variable is None:
                checker.missing(key, f'{name} has no moving average in this port')
                continue
        checker.array(key, variable.numpy(), arrays[key])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('reference_json', help='reference_<optimizer>.json (its .npz beside it)')
    parser.add_argument('--pretrained_model', default=str(DEFAULT_MODEL),
                        help='the model whose weights the reference started from (default: the shared '
                             '20170512-110547 .pb); checked against the reference\'s pb_sha256 when it has one')
    parser.add_argument('--loss_tolerance', type=float, default=1e-4)
    parser.add_argument('--variable_tolerance', type=float, default=1e-4,
                        help='for variables, gradients, forward outputs and batch statistics')
    parser.add_argument('--sensitivity_factor', type=float, default=3.0,
                        help="a quantity's tolerance is at least this many times how far it moves when the inputs "
                             "move by one float32 ulp (a probe run of the same replay first; 0: no probe run)")
    args = parser.parse_args(argv)
    try:
        reference, arrays = load_reference(args.reference_json)
        expected_sha = reference.get('pb_sha256')
        if not Path(args.pretrained_model).exists():
            raise ReferenceError_(f'{args.pretrained_model}: no such model (give --pretrained_model)')
        if expected_sha and Path(args.pretrained_model).is_file():
            digest = hashlib.sha256(Path(args.pretrained_model).read_bytes()).hexdigest()
            if digest != expected_sha:
                raise ReferenceError_(f'{args.pretrained_model}: SHA-256 {digest[:12]}... is not the reference\'s '
                                      f'{expected_sha[:12]}...: give the model the reference started from')
        print(f'Reference {args.reference_json}: optimizer {reference["config"].get("optimizer")}, '
              f'{len(reference["steps"])} steps, {len(arrays)} arrays')
        moved = {}
        if args.sensitivity_factor > 0:
            print('     probe run on the inputs moved by one float32 ulp: how far rounding alone moves each quantity',
                  flush=True)
            probe = Recorder(args.loss_tolerance, args.variable_tolerance)
            check(reference, arrays, args.pretrained_model, probe, inputs=one_ulp_moved(arrays['inputs']),
                  say=lambda line: None)
            moved = probe.values
        checker = Checker(args.loss_tolerance, args.variable_tolerance, moved, args.sensitivity_factor)
        check(reference, arrays, args.pretrained_model, checker)
    except ReferenceError_ as e:
        print(f'check_train_step.py: {e}', file=sys.stderr)
        return 2
    worst = max((row[1] / row[2] if row[2] else np.inf) for row in checker.rows) if checker.rows else 0
    print(f'{len(checker.rows)} quantities compared, {len(checker.failures)} beyond tolerance '
          f'(worst at {worst:.2g} of its tolerance)')
    return 1 if checker.failures or not checker.rows else 0


if __name__ == '__main__':
    sys.exit(main())
