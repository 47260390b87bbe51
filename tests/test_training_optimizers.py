"""The TF1 optimizers of facenet.train as Keras optimizers, checked against TF1's own optimizers
(`tf.compat.v1.train.*`, run eagerly on resource variables) step by step: variables and slots,
dense and sparse gradients with duplicate indices, a learning rate that changes between steps, a
non-trainable variable in the list, one trace of the step, and MirroredStrategy on two logical CPUs."""
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from facenet_tf2.training.optimizers import OPTIMIZERS, create_optimizer, initial_value, split_tf1_hparams
from training_fixtures import free_localhost_ports

# facenet.train's constructions, written out as the original wrote them.
ORIGINAL_TF1 = {
    'ADAGRAD': lambda lr: tf.compat.v1.train.AdagradOptimizer(lr),
    'ADADELTA': lambda lr: tf.compat.v1.train.AdadeltaOptimizer(lr, rho=0.9, epsilon=1e-6),
    'ADAM': lambda lr: tf.compat.v1.train.AdamOptimizer(lr, beta1=0.9, beta2=0.999, epsilon=0.1),
    'RMSPROP': lambda lr: tf.compat.v1.train.RMSPropOptimizer(lr, decay=0.9, momentum=0.9, epsilon=1.0),
    'MOM': lambda lr: tf.compat.v1.train.MomentumOptimizer(lr, 0.9, use_nesterov=True),
}
TF1_CLASS = {'ADAGRAD': 'AdagradOptimizer', 'ADADELTA': 'AdadeltaOptimizer', 'ADAM': 'AdamOptimizer',
             'RMSPROP': 'RMSPropOptimizer', 'MOM': 'MomentumOptimizer'}
# Other constructor values, under TF1's argument names.
OTHER_HPARAMS = {
    'ADAGRAD': {'initial_accumulator_value': 0.3},
    'ADADELTA': {'rho': 0.8, 'epsilon': 1e-3},
    'ADAM': {'beta1': 0.8, 'beta2': 0.99, 'epsilon': 1e-3},
    'RMSPROP': {'decay': 0.8, 'momentum': 0.5, 'epsilon': 0.01},
    'MOM': {'momentum': 0.7, 'use_nesterov': False},
}
LEARNING_RATES = [0.05, 0.03, 0.08, 0.01, 0.02]
# Rows of the [5, 3] centres with a gradient at each step: duplicates every step, row 4 never,
# rows 2 and 3 not in the last step.
CENTER_INDICES = [[0, 1, 1, 2, 0], [2, 3, 3, 2, 2], [0, 0, 1, 3, 1], [3, 2, 3, 3, 0], [1, 1, 0, 0, 1]]


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    initial = {'weights': rng.normal(size=(4, 3)), 'biases': rng.normal(size=3), 'centers': rng.normal(size=(5, 3))}
    steps = [{'weights': rng.normal(size=(4, 3)), 'biases': rng.normal(size=3),
              'center_values': rng.normal(size=(len(indices), 3)), 'center_indices': np.array(indices, np.int32),
              'learning_rate': lr}
             for indices, lr in zip(CENTER_INDICES, LEARNING_RATES)]
    cast = lambda d: {k: v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == np.float64 else v
                      for k, v in d.items()}
    return cast(initial), [cast(step) for step in steps]


def _close(ours, expected):
    ours, expected = np.asarray(ours), np.asarray(expected)
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


def _state(variables, slot_names, slot, beta_powers):
    state = {key: variable.numpy() for key, variable in variables.items()}
    for key, variable in variables.items():
        for slot_name in slot_names:
            state[f'{key}/{slot_name}'] = slot(variable, slot_name).numpy()
    if beta_powers is not None:
        state['beta_powers'] = np.array([power.numpy() for power in beta_powers])
    return state


def _tf1_run(name, hparams, initial, steps):
    """TF1's optimizer on resource variables; yields the variables and slots after each step."""
    current = {'lr': steps[0]['learning_rate']}
    learning_rate = lambda: current['lr']
    optimizer = (ORIGINAL_TF1[name](learning_rate) if hparams is None
                 else getattr(tf.compat.v1.train, TF1_CLASS[name])(learning_rate, **hparams))
    variables = {key: tf.Variable(value, name=key) for key, value in initial.items()}
    for step in steps:
        current['lr'] = step['learning_rate']
        sparse = tf.IndexedSlices(tf.constant(step['center_values']), tf.constant(step['center_indices']),
                                  tf.constant([5, 3]))
        optimizer.apply_gradients([(tf.constant(step['weights']), variables['weights']),
                                   (tf.constant(step['biases']), variables['biases']),
                                   (sparse, variables['centers'])])
        yield _state(variables, optimizer.get_slot_names(), optimizer.get_slot,
                     optimizer._get_beta_accumulators() if name == 'ADAM' else None)


def _keras_run(name, hparams, initial, steps, fused=True):
    """Ours, the step a tf.function traced once; yields the same state as _tf1_run, then the trace count.
    fused: dense gradients through TF's apply kernels, else the element-wise rule."""
    optimizer = create_optimizer(name, steps[0]['learning_rate'], fused=fused, **(hparams or {}))
    variables = {key: keras.Variable(value, name=key, trainable=key != 'centers') for key, value in initial.items()}
    assert not variables['centers'].trainable
    # Slots are variables: created in the first trace, they would make tf.function trace twice.
    optimizer.build(list(variables.values()))
    traces = []

    @tf.function
    def train_step(weights, biases, center_values, center_indices, learning_rate):
        traces.append(1)
        optimizer.learning_rate = learning_rate
        sparse = tf.IndexedSlices(center_values, center_indices, tf.constant([5, 3]))
        optimizer.apply_gradients([(weights, variables['weights']), (biases, variables['biases']),
                                   (sparse, variables['centers'])])

    for step in steps:
        train_step(step['weights'], step['biases'], step['center_values'], step['center_indices'],
                   tf.constant(step['learning_rate'], tf.float32))
        yield _state(variables, optimizer.slot_names(), optimizer.slot,
                     optimizer.beta_powers() if name == 'ADAM' else None)
    yield len(traces)


@pytest.mark.parametrize('fused', [True, False], ids=['fused', 'element-wise'])
@pytest.mark.parametrize('hparams', ['original', 'other'])
@pytest.mark.parametrize('name', OPTIMIZERS)
def test_matches_tf1_optimizer_step_by_step(name, hparams, fused):
    hparams = None if hparams == 'original' else OTHER_HPARAMS[name]
    initial, steps = _problem()
    ours = list(_keras_run(name, hparams, initial, steps, fused))
    trace_count = ours.pop()
    assert trace_count == 1
    expected = list(_tf1_run(name, hparams, initial, steps))
    for step, (our_state, tf1_state) in enumerate(zip(ours, expected)):
        assert sorted(our_state) == sorted(tf1_state)
        if name == 'ADAM':
            # float32 products as TF1's, not beta ** t: that differs in the last bit from step 3 on,
            # and 1 - beta2 ** t magnifies it in the step size
            np.testing.assert_array_equal(our_state['beta_powers'], tf1_state['beta_powers'])
        for key in tf1_state:
            try:
                _close(our_state[key], tf1_state[key])
            except AssertionError as error:
                raise AssertionError(f'step {step + 1}, {key}: {error}') from None
    # The sparse rules, visible in the last step: rows 2 and 3 had no gradient there.
    before, after = ours[-2]['centers'], ours[-1]['centers']
    np.testing.assert_array_equal(after[4], initial['centers'][4])
    if name == 'ADAM':
        assert np.all(after[2:4] != before[2:4])
    else:
        np.testing.assert_array_equal(after[2:4], before[2:4])


def test_learning_rate_set_eagerly_is_used_by_the_next_apply():
    variable = keras.Variable(np.ones(3, np.float32))
    optimizer = create_optimizer('MOM', 0.5, use_nesterov=False)
    optimizer.apply_gradients([(tf.ones(3), variable)])
    optimizer.learning_rate = 0.25
    optimizer.apply_gradients([(tf.ones(3), variable)])
    # accum 1 then 0.9 + 1: 1 - 0.5 * 1 - 0.25 * 1.9
    np.testing.assert_allclose(variable.numpy(), 1 - 0.5 - 0.25 * 1.9, rtol=1e-6)


def test_gather_on_a_non_trainable_variable_gives_a_sparse_gradient_when_watched():
    """The center loss reads the non-trainable centres through tf.gather: the tape must watch them
    (it only watches trainable variables by itself), and then their gradient is IndexedSlices."""
    centers = keras.Variable(np.zeros((4, 2), np.float32), trainable=False)
    features = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    labels = tf.constant([1, 3, 1])

    def loss():
        return tf.nn.l2_loss(features - tf.gather(centers, labels))

    with tf.GradientTape() as tape:
        unwatched = loss()
    assert tape.gradient(unwatched, centers) is None
    with tf.GradientTape() as tape:
        tape.watch(centers.value)
        watched = loss()
    gradient = tape.gradient(watched, centers.value)
    assert isinstance(gradient, tf.IndexedSlices)
    optimizer = create_optimizer('ADAGRAD', 0.1)
    optimizer.apply_gradients([(gradient, centers)])
    # Row 1 gets -(1 + 5, 2 + 6) summed, row 3 -(3, 4): var -= lr * g / sqrt(0.1 + g^2)
    g = np.array([[0, 0], [-6, -8], [0, 0], [-3, -4]], np.float32)
    expected = np.where(g != 0, -0.1 * g / np.sqrt(0.1 + g * g), 0.0)
    np.testing.assert_allclose(centers.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize('name', OPTIMIZERS)
def test_slot_checkpoint_names_are_tf1s(name):
    graph = tf.Graph()
    with graph.as_default():
        variable = tf.compat.v1.get_variable('Logits/weights', [3, 2])
        tf1 = ORIGINAL_TF1[name](0.1)
        tf1.minimize(tf.reduce_sum(variable), var_list=[variable])
        expected = {slot: tf1.get_slot(variable, slot).op.name for slot in tf1.get_slot_names()}
    ours = create_optimizer(name)
    assert ours.tf1_slot_names('Logits/weights') == expected


def test_training_checkpoint_restores_slots_and_iterations(tmp_path):
    variable = keras.Variable(np.ones((2, 2), np.float32))
    optimizer = create_optimizer('ADAM', 0.1)
    optimizer.apply_gradients([(tf.constant([[1.0, -2.0], [3.0, 0.5]]), variable)])
    path = tf.train.Checkpoint(optimizer=optimizer, variable=variable).save(str(tmp_path / 'ckpt'))
    restored = create_optimizer('ADAM', 0.7)
    restored.build([variable])
    tf.train.Checkpoint(optimizer=restored, variable=variable).restore(path).assert_consumed()
    assert int(restored.iterations.numpy()) == 1
    assert restored.learning_rate.numpy() == pytest.approx(0.1)
    for slot in optimizer.slot_names():
        np.testing.assert_array_equal(restored.slot(variable, slot).numpy(), optimizer.slot(variable, slot).numpy())


@pytest.mark.parametrize('name', OPTIMIZERS)
def test_serialisation_keeps_the_hyperparameters(name):
    optimizer = create_optimizer(name, 0.02, **OTHER_HPARAMS[name])
    copy = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(copy) is type(optimizer)
    assert copy.get_config() == optimizer.get_config()
    assert copy.get_config()['learning_rate'] == pytest.approx(0.02)
    for key, value in OTHER_HPARAMS[name].items():
        assert getattr(copy, key) == pytest.approx(value)


def test_create_optimizer_refuses_unknown_names_and_arguments():
    with pytest.raises(ValueError, match='ADAGRAD, ADADELTA, ADAM, RMSPROP, MOM'):
        create_optimizer('SGD')
    with pytest.raises(ValueError, match='beta1'):
        create_optimizer('ADAM', beta_1=0.8)
    with pytest.raises(ValueError, match='initial_accumulator_value'):
        create_optimizer('ADAGRAD', initial_accumulator_value=0.0)


def test_reference_adagrad_first_step(reference_dir):
    """The shared reference's TF1 Adagrad step on the Logits layer, from its recorded gradients."""
    config = json.loads((reference_dir / 'train_softmax' / 'reference_adagrad.json').read_text())
    arrays = np.load(reference_dir / 'train_softmax' / 'reference_adagrad.npz')
    hparams = {k: v for k, v in config['optimizer_hparams'].items() if k != 'cls'}
    optimizer = create_optimizer(config['config']['optimizer'], config['config']['learning_rate'], **hparams)
    variables = {key: keras.Variable(arrays[f'init/Logits/{key}']) for key in ('weights', 'biases')}
    optimizer.build(list(variables.values()))
    slot_names = optimizer.tf1_slot_names('Logits/weights')
    for slot, checkpoint_name in slot_names.items():
        np.testing.assert_array_equal(optimizer.slot(variables['weights'], slot).numpy(),
                                      config['optimizer_slot_initial_values_for_Logits_weights'][checkpoint_name])
    optimizer.apply_gradients([(arrays[f'step1/grad/Logits/{key}'], variable) for key, variable in variables.items()])
    for key, variable in variables.items():
        _close(variable.numpy(), arrays[f'after_step1/Logits/{key}'])


# One process of a distributed run: `mirrored OUT` (two logical CPUs) or `multiworker OUT INDEX PORTS`
# (one replica per worker process, TF_CONFIG on localhost). Each replica gets its own gradients; the
# process also applies their sum on one device with an undistributed optimizer and saves both.
# ADAGRAD has the shared dense and row-wise sparse path of four of the optimizers, ADAM its own
# sparse rule and the beta powers it advances once per apply: the two cover the code, in half the time.
DISTRIBUTED_OPTIMIZERS = ('ADAGRAD', 'ADAM')
DISTRIBUTED_SCRIPT = textwrap.dedent('''
    import json
    import os
    import sys
    import numpy as np
    kind, output = sys.argv[1:3]
    names = DISTRIBUTED_OPTIMIZERS
    if kind == 'multiworker':
        ports = sys.argv[4].split(',')
        os.environ['TF_CONFIG'] = json.dumps({'cluster': {'worker': [f'localhost:{port}' for port in ports]},
                                              'task': {'type': 'worker', 'index': int(sys.argv[3])}})
    import tensorflow as tf
    if kind == 'mirrored':
        cpu = tf.config.list_physical_devices('CPU')[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    import keras
    from facenet_tf2.training.optimizers import create_optimizer

    rng = np.random.default_rng(1)
    initial = [rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)]
    # Per step and replica: a dense gradient, sparse rows and their indices (duplicates across replicas).
    steps = [[(rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(3, 3)).astype(np.float32),
               np.array(indices, np.int32)) for indices in pair]
             for pair in [([0, 1, 1], [1, 2, 4]), ([3, 3, 0], [0, 2, 3]), ([4, 1, 2], [2, 2, 2])]]
    learning_rates = [0.05, 0.02, 0.04]
    results = {'initial0': initial[0], 'initial1': initial[1]}
    for name in names:
        with strategy.scope():
            distributed = [keras.Variable(initial[0]), keras.Variable(initial[1], trainable=False)]
            distributed_optimizer = create_optimizer(name, learning_rates[0])
            distributed_optimizer.build(distributed)
        single = [keras.Variable(initial[0]), keras.Variable(initial[1], trainable=False)]
        single_optimizer = create_optimizer(name, learning_rates[0])
        single_optimizer.build(single)

        def replica_step(dense, values, indices):
            # Placed on the replica's device, as gradients computed there are: the collective
            # all-reduce of MultiWorkerMirroredStrategy needs a device on every tensor it reduces.
            dense, values, indices = tf.identity(dense), tf.identity(values), tf.identity(indices)
            sparse = tf.IndexedSlices(values, indices, tf.constant([5, 3]))
            distributed_optimizer.apply_gradients(zip([dense, sparse], distributed))

        @tf.function
        def distributed_step(gradients, learning_rate):
            distributed_optimizer.learning_rate = learning_rate
            strategy.run(replica_step, args=gradients)

        @tf.function
        def single_step(dense, values, indices, learning_rate):
            single_optimizer.learning_rate = learning_rate
            sparse = tf.IndexedSlices(values, indices, tf.constant([5, 3]))
            single_optimizer.apply_gradients(zip([dense, sparse], single))

        for replicas, learning_rate in zip(steps, learning_rates):
            gradients = strategy.experimental_distribute_values_from_function(
                lambda context: tuple(tf.constant(g) for g in replicas[context.replica_id_in_sync_group]))
            distributed_step(gradients, tf.constant(learning_rate))
            single_step(replicas[0][0] + replicas[1][0], np.concatenate([replicas[0][1], replicas[1][1]]),
                        np.concatenate([replicas[0][2], replicas[1][2]]), tf.constant(learning_rate))
        assert distributed_step.experimental_get_tracing_count() == 1
        for i, (d, s) in enumerate(zip(distributed, single)):
            results[f'{name}/var{i}/distributed'] = np.stack([c.numpy() for c in d.value.values])
            results[f'{name}/var{i}/single'] = s.numpy()
            for slot in single_optimizer.slot_names():
                results[f'{name}/var{i}/{slot}/distributed'] = np.stack(
                    [c.numpy() for c in distributed_optimizer.slot(d, slot).value.values])
                results[f'{name}/var{i}/{slot}/single'] = single_optimizer.slot(s, slot).numpy()
    results['replicas'] = np.array([strategy.num_replicas_in_sync, len(distributed[0].value.values)])
    np.savez(output, **results)
''')


def _run_distributed(arguments_per_process):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(p) for p in sys.path if p]))
    script = DISTRIBUTED_SCRIPT.replace('DISTRIBUTED_OPTIMIZERS', repr(DISTRIBUTED_OPTIMIZERS))
    processes = [subprocess.Popen([sys.executable, '-c', script, *map(str, arguments)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for arguments in arguments_per_process]
    try:
        errors = [process.communicate(timeout=300)[1] for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, error in zip(processes, errors):
        assert process.returncode == 0, error[-3000:]


def _assert_distributed_equals_single(output, replicas_in_process):
    results = np.load(output)
    assert list(results['replicas']) == [2, replicas_in_process]
    for name in DISTRIBUTED_OPTIMIZERS:
        singles = [key for key in results.files if key.startswith(f'{name}/') and key.endswith('/single')]
        assert len(singles) == 2 * (1 + len(create_optimizer(name).SLOTS))
        for i in (0, 1):
            assert np.abs(results[f'{name}/var{i}/single'] - results[f'initial{i}']).max() > 1e-5
        for key in singles:
            distributed = results[key[:-len('single')] + 'distributed']
            for replica in distributed:
                try:
                    _close(replica, results[key])
                except AssertionError as error:
                    raise AssertionError(f'{key}: {error}') from None


def test_mirrored_strategy_apply_equals_single_device_apply_of_the_summed_gradients(tmp_path):
    _run_distributed([('mirrored', tmp_path / 'mirrored.npz')])
    _assert_distributed_equals_single(tmp_path / 'mirrored.npz', replicas_in_process=2)


def test_multi_worker_apply_equals_single_device_apply_of_the_summed_gradients(tmp_path):
    ports = ','.join(map(str, free_localhost_ports(2)))
    _run_distributed([('multiworker', tmp_path / f'worker{index}.npz', index, ports) for index in (0, 1)])
    for index in (0, 1):
        _assert_distributed_equals_single(tmp_path / f'worker{index}.npz', replicas_in_process=1)


CENTERED = {'decay': 0.8, 'momentum': 0.5, 'epsilon': 0.01, 'centered': True}


def test_centered_rmsprop_matches_tf1_step_by_step_and_its_formula():
    """RMSPropOptimizer(centered=True): every variable and slot (rms, mg, momentum) equals TF1's
    after each of 5 steps (dense and sparse gradients), and the first dense step equals
    ApplyCenteredRMSProp's formula written out in float64."""
    initial, steps = _problem(1)
    ours = list(_keras_run('RMSPROP', CENTERED, initial, steps))
    assert ours.pop() == 1
    elementwise = list(_keras_run('RMSPROP', CENTERED, initial, steps, fused=False))[:-1]
    for fused_state, rule_state in zip(ours, elementwise):
        for key in fused_state:
            _close(fused_state[key], rule_state[key])
    expected = list(_tf1_run('RMSPROP', CENTERED, initial, steps))
    for step, (our_state, tf1_state) in enumerate(zip(ours, expected)):
        assert sorted(our_state) == sorted(tf1_state) and 'weights/mg' in our_state
        for key in tf1_state:
            try:
                _close(our_state[key], tf1_state[key])
            except AssertionError as error:
                raise AssertionError(f'step {step + 1}, {key}: {error}') from None
    g, lr = steps[0]['weights'].astype(np.float64), steps[0]['learning_rate']
    ms = 1.0 + (g * g - 1.0) * (1 - 0.8)
    mg = g * (1 - 0.8)
    mom = lr * g / np.sqrt(ms - mg * mg + 0.01)
    _close(ours[0]['weights/mg'], mg)
    _close(ours[0]['weights/momentum'], mom)
    _close(ours[0]['weights'], initial['weights'] - mom)
    uncentered = list(_keras_run('RMSPROP', dict(CENTERED, centered=False), initial, steps[:1]))[0]
    assert np.abs(uncentered['weights'] - ours[0]['weights']).max() > 1e-3  # the centring changes the step


def test_centered_rmsprop_slots_have_tf1s_checkpoint_names():
    graph = tf.Graph()
    with graph.as_default():
        variable = tf.compat.v1.get_variable('Logits/weights', [3, 2])
        tf1 = tf.compat.v1.train.RMSPropOptimizer(0.1, centered=True)
        tf1.minimize(tf.reduce_sum(variable), var_list=[variable])
        expected = {slot: tf1.get_slot(variable, slot).op.name for slot in tf1.get_slot_names()}
    assert create_optimizer('RMSPROP', centered=True).tf1_slot_names('Logits/weights') == expected


def test_a_references_descriptive_hparams_are_split_off_and_slot_initial_values_read():
    hparams, described = split_tf1_hparams('RMSPROP', {'cls': 'tf.train.RMSPropOptimizer', 'decay': 0.9,
                                                       'centered': True, 'ms_init': 1.0, 'mom_init': 0.0,
                                                       'use_locking': False, 'colour': 'blue'})
    assert hparams == {'decay': 0.9, 'centered': True, 'use_locking': False}
    assert sorted(described) == ['cls', 'colour', 'mom_init', 'ms_init']
    variable = keras.Variable(np.zeros((2, 3), np.float32))
    for name, key, value in (('RMSPROP', 'ms_init', 1.0), ('RMSPROP', 'mom_init', 0.0), ('ADAGRAD', 'accum_init', 0.1),
                             ('ADADELTA', 'accum_init', 0.0), ('ADAM', 'm_init', 0.0),
                             ('ADAM', 'beta1_power_init', 0.9), ('ADAM', 'beta2_power_init', 0.999)):
        optimizer = create_optimizer(name)
        optimizer.build([variable])
        np.testing.assert_allclose(initial_value(optimizer, variable, key), value, rtol=1e-7, err_msg=f'{name} {key}')
    optimizer = create_optimizer('RMSPROP', centered=True)
    optimizer.build([variable])
    assert initial_value(optimizer, variable, 'mg_init').shape == (2, 3)
    assert initial_value(optimizer, variable, 'beta1_power_init') is None
    assert initial_value(create_optimizer('ADAM'), variable, 'colour') is None


def test_ema_fused_kernel_equals_the_element_wise_update_and_tf1s_rule():
    """ExponentialMovingAverage: the fused ResourceApplyGradientDescent path and the sub/mul/assign_sub
    path give the same shadows, which follow TF1's rule decay = min(decay, (1 + t) / (10 + t))."""
    from facenet_tf2.training.ema import ExponentialMovingAverage
    rng = np.random.default_rng(7)
    start = rng.standard_normal((3, 4)).astype(np.float32)
    shadows = {}
    for fused in (True, False):
        variable = tf.Variable(start)
        ema = ExponentialMovingAverage([variable], 0.99, fused=fused)
        apply = tf.function(ema.apply)
        for step in range(4):
            variable.assign(variable * 1.5 + 0.1)
            apply(tf.constant(step, tf.int64))
        shadows[fused] = ema.shadows[0].numpy()
    expected, value = start.astype(np.float64), start.astype(np.float64)
    for step in range(4):
        value = value * 1.5 + 0.1
        decay = min(0.99, (1 + step) / (10 + step))
        expected = expected - (1 - decay) * (expected - value)
    np.testing.assert_array_equal(shadows[True], shadows[False])
    np.testing.assert_allclose(shadows[True], expected, rtol=1e-5)
    assert np.abs(shadows[True] - start).max() > 0.1
