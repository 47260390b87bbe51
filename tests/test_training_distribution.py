"""The training core under tf.distribute: MirroredStrategy over two logical CPU devices and
MultiWorkerMirroredStrategy over two local worker processes give the single-device step's losses
and updated weights (BatchNorm synchronised) for the same global batch."""
import json
import subprocess
import sys

import numpy as np
import pytest

from training_fixtures import REPO_ROOT, free_localhost_ports, script_environment

WORKER = REPO_ROOT / 'tests' / 'distributed_step.py'


def _run(kind, out, env=None):
    return subprocess.Popen([sys.executable, str(WORKER), kind, str(out)], env=env or script_environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finished(process, timeout=300):
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-3000:]


@pytest.fixture(scope='module')
def single_device(tmp_path_factory):
    out = tmp_path_factory.mktemp('single') / 'single.npz'
    _finished(_run('none', out))
    return dict(np.load(out))


def _assert_same_training(single, distributed, replicas):
    assert int(distributed['replicas']) == replicas
    assert int(distributed['tracing_count']) == int(single['tracing_count']) == 1
    keys = [key for key in single if key.startswith(('step', 'final'))]
    assert any(key.startswith('final/centers') for key in keys) and any('moving_variance' in k for k in keys)
    for key in keys:
        np.testing.assert_allclose(distributed[key], single[key], rtol=2e-5, atol=2e-6, err_msg=key)


def test_mirrored_step_equals_the_single_device_step(single_device, tmp_path):
    out = tmp_path / 'mirrored.npz'
    _finished(_run('mirrored', out))
    _assert_same_training(single_device, dict(np.load(out)), replicas=2)


def test_multi_worker_step_equals_the_single_device_step(single_device, tmp_path):
    ports = free_localhost_ports(2)
    cluster = {'worker': [f'localhost:{port}' for port in ports]}
    out = tmp_path / 'multi_worker.npz'
    workers = []
    for index in range(2):
        env = script_environment()
        env['TF_CONFIG'] = json.dumps({'cluster': cluster, 'task': {'type': 'worker', 'index': index}})
        workers.append(_run('multi_worker', out, env))
    for worker in workers:
        _finished(worker)
    _assert_same_training(single_device, dict(np.load(out)), replicas=2)
