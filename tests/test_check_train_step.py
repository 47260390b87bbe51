"""benchmarks/check_train_step.py reads any reference of the shared format: TF1 constructor
arguments such as RMSPropOptimizer(centered=True) and descriptive `optimizer_hparams` keys (slot
initial values) are accepted, checked where the port has what they name, reported otherwise."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from training_fixtures import REPO_ROOT

CHECKER = REPO_ROOT / 'benchmarks' / 'check_train_step.py'
CENTERED = {'decay': 0.9, 'momentum': 0.9, 'epsilon': 1.0, 'centered': True}


def _tf1_centered_rmsprop_step(value, gradient, learning_rate):
    """One step of TF1's own RMSPropOptimizer(centered=True) kernel, in a TF1 graph."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        variable = tf.compat.v1.get_variable('v', initializer=tf.constant(value), use_resource=True)
        optimizer = tf.compat.v1.train.RMSPropOptimizer(learning_rate, **CENTERED)
        step = optimizer.apply_gradients([(tf.constant(gradient), variable)])
        sess.run(tf.compat.v1.global_variables_initializer())
        sess.run(step)
        return sess.run(variable)


@pytest.mark.slow
def test_a_centered_rmsprop_reference_with_slot_init_keys_passes(reference_dir, tmp_path):
    """The shared Adagrad reference made an RMSProp(centered=True) one: its first step (loss,
    forward pass, gradients: independent of the optimizer) kept, the Logits after step 1 computed
    by TF1's kernel from the reference's gradients, and slot-init keys added."""
    source = reference_dir / 'train_softmax' / 'reference_adagrad.json'
    reference = json.loads(source.read_text())
    reference['config']['optimizer'] = 'RMSPROP'
    reference['optimizer_hparams'] = {'cls': 'tf.train.RMSPropOptimizer', **CENTERED, 'use_locking': False,
                                      'ms_init': 1.0, 'mg_init': 0.0, 'mom_init': 0.0, 'beta1_power_init': 0.9}
    reference['steps'] = [{key: reference['steps'][0][key] for key in ('total_loss', 'cross_entropy_mean')}]
    arrays = dict(np.load(source.with_suffix('.npz')))
    kept = {key: value for key, value in arrays.items()
            if key in ('inputs', 'labels', 'init/Logits/weights', 'init/Logits/biases', 'step1/logits')}
    rate = reference['config']['learning_rate']
    for name in ('Logits/weights', 'Logits/biases'):
        kept[f'after_step1/{name}'] = _tf1_centered_rmsprop_step(arrays[f'init/{name}'], arrays[f'step1/grad/{name}'],
                                                                 rate)
    assert np.abs(kept['after_step1/Logits/weights'] - arrays['init/Logits/weights']).max() > 1e-3
    (tmp_path / 'centered.json').write_text(json.dumps(reference))
    np.savez(tmp_path / 'centered.npz', **kept)
    result = subprocess.run([sys.executable, str(CHECKER), str(tmp_path / 'centered.json')], capture_output=True,
                            text=True, timeout=900, check=False, env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    passed = [line.split()[1] for line in result.stdout.splitlines() if line.startswith('ok ')]
    assert {'optimizer_hparams.ms_init', 'optimizer_hparams.mg_init', 'optimizer_hparams.mom_init',
            'after_step1/Logits/weights', 'after_step1/Logits/biases', 'steps[0].total_loss'} <= set(passed), passed
    not_checked = [line.split()[0] for line in result.stdout.splitlines() if 'not checked' in line]
    assert not_checked == ['optimizer_hparams.beta1_power_init:', 'optimizer_hparams.cls:'], result.stdout[-2000:]
