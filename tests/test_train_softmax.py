"""train_softmax.py and the training core: fidelity to the original's training steps, the
original's output layout, resume after SIGKILL, one trace, margin losses and bad input."""
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import tensorflow as tf

from facenet_tf2.commands import train_softmax
from training_fixtures import (REPO_ROOT, kill_at_line, run_in_process, run_trainer, start_trainer, the_run_folder,
                               tiny_run_arguments)

CHECKER = REPO_ROOT / 'benchmarks' / 'check_train_step.py'


@pytest.fixture(scope='module')
def faces(identities):
    return identities('faces')


def _run_checker(reference_json):
    return subprocess.run([sys.executable, str(CHECKER), str(reference_json)], capture_output=True, text=True,
                          timeout=900, check=False, env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})


@pytest.mark.slow
def test_training_steps_reproduce_the_original(reference_dir):
    """Three steps of the original train_softmax graph (losses, gradients, BatchNorm moving
    statistics, Logits, centres, EMA): every recorded quantity within tolerance."""
    result = _run_checker(reference_dir / 'train_softmax' / 'reference_adagrad.json')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert ' 0 beyond tolerance' in result.stdout
    compared = int(result.stdout.split(' quantities compared')[0].rsplit('\n', 1)[-1])
    assert compared >= 80  # every scalar of 3 steps, the forward pass, gradients and variables
    # A tolerance widened by the quantity's own float32 sensitivity (the probe run on one-ulp-moved
    # inputs) stays small: here only step-1 gradients of the lower layers, and by at most 1e-2.
    widened = [line.split() for line in result.stdout.splitlines() if 'under a one-ulp input change' in line]
    for fields in widened:
        assert fields[1].startswith('step1/grad/InceptionResnetV1/'), fields
        assert float(fields[fields.index('tolerance') + 1].rstrip(':')) < 1e-2, fields


@pytest.mark.slow
def test_the_checker_reads_a_subset_and_fails_on_a_wrong_value(reference_dir, tmp_path):
    """A reference of one step with only some arrays, two of them wrong: a Logits weight off by 0.1%, and
    the stem's step-1 gradient, whose tolerance the checker widens to its float32 sensitivity (about
    3e-3), off by 2%: the checker compares what is there, passes the rest and fails on exactly those."""
    source = reference_dir / 'train_softmax' / 'reference_adagrad.json'
    reference = json.loads(source.read_text())
    reference['steps'] = reference['steps'][:1]
    arrays = dict(np.load(source.with_suffix('.npz')))
    subset = {key: value for key, value in arrays.items()
              if key in ('inputs', 'labels', 'init/Logits/weights', 'init/Logits/biases', 'step1/logits')
              or key.startswith('after_step1/')}
    subset['after_step1/Logits/weights'] = subset['after_step1/Logits/weights'] * 1.001
    stem = 'step1/grad/InceptionResnetV1/Conv2d_1a_3x3/weights'
    subset[stem] = arrays[stem] * 1.02
    (tmp_path / 'subset.json').write_text(json.dumps(reference))
    np.savez(tmp_path / 'subset.npz', **subset)
    result = _run_checker(tmp_path / 'subset.json')
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    failed = [line for line in result.stdout.splitlines() if line.startswith('FAIL')]
    assert sorted(line.split()[1] for line in failed) == ['after_step1/Logits/weights', stem], failed
    assert 'under a one-ulp input change' in next(line for line in failed if stem in line)
    passed = [line.split()[1] for line in result.stdout.splitlines() if line.startswith('ok ')]
    assert 'after_step1/centers' in passed and 'step1/logits' in passed and 'steps[0].total_loss' in passed
    assert not any(name.startswith(('after_step2', 'final')) for name in passed)


def test_a_run_writes_the_original_layout_and_its_model_loads(faces, tmp_path):
    result = run_trainer('train_softmax.py', tiny_run_arguments(
        faces, tmp_path, '--batch_size', 8, '--epoch_size', 2, '--max_nrof_epochs', 2, '--random_flip',
        '--center_loss_factor', 0.01, '--prelogits_norm_loss_factor', 5e-4, '--weight_decay', 5e-4))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    run = the_run_folder(tmp_path)
    subdir = run.name
    for name in (f'model-{subdir}.meta', f'model-{subdir}.ckpt-4.index', f'model-{subdir}.ckpt-2.index', 'checkpoint',
                 f'{subdir}.pb', f'{subdir}.keras'):
        assert (run / name).exists(), name
    logs = tmp_path / 'logs' / subdir
    assert (logs / 'arguments.txt').exists() and (logs / 'revision_info.txt').exists()
    assert list(logs.glob('events.out.tfevents.*'))
    with h5py.File(logs / 'stat.h5', 'r') as stat:
        assert {'loss', 'center_loss', 'reg_loss', 'xent_loss', 'prelogits_norm', 'accuracy', 'learning_rate',
                'time_train', 'time_validate', 'lfw_accuracy', 'lfw_valrate', 'val_loss', 'val_xent_loss',
                'val_accuracy', 'prelogits_hist'} <= set(stat)
        assert np.all(stat['loss'][:4] > 0) and np.all(stat['loss'][4:] == 0)
        assert stat['prelogits_hist'][0].sum() == 2 * 8 * 8  # two steps of 8 images x 8 prelogits
    assert 'Epoch: [2][2/2]' in result.stdout

    checkpoint = tf.train.load_checkpoint(str(run / f'model-{subdir}.ckpt-4'))
    names = set(checkpoint.get_variable_to_shape_map())
    assert {'Bottleneck/weights', 'Bottleneck/BatchNorm/moving_variance', 'Logits/weights', 'Logits/biases'} <= names
    assert 'centers' not in names  # the original saved its trainable variables only

    # The model folder (checkpoint + .meta) and the exported .pb load as any original model does.
    code = f'''
import numpy as np, tensorflow as tf, facenet
images = np.random.default_rng(0).normal(size=(3, 24, 24, 3)).astype(np.float32)
from_checkpoint = np.asarray(facenet.load_model({str(run)!r})(images))
with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    graph_def = tf.compat.v1.GraphDef(); graph_def.ParseFromString(open({str(run / (subdir + ".pb"))!r}, "rb").read())
    tf.compat.v1.import_graph_def(graph_def, name="")
    frozen = sess.run("embeddings:0", {{"input:0": images, "phase_train:0": False}})
with tf.Graph().as_default(), tf.compat.v1.Session() as sess:  # original TF1 code restoring the checkpoint
    saver = tf.compat.v1.train.import_meta_graph({str(run / f"model-{subdir}.meta")!r})
    saver.restore(sess, tf.train.latest_checkpoint({str(run)!r}))
    restored = sess.run("Bottleneck/weights:0")
print(from_checkpoint.shape, frozen.shape, np.abs(np.linalg.norm(frozen, axis=1) - 1).max(), restored.shape)
'''
    probe = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300, check=False,
                           env={**os.environ, 'PYTHONPATH': str(REPO_ROOT / 'src'), 'TF_CPP_MIN_LOG_LEVEL': '2'})
    assert probe.returncode == 0, probe.stderr[-3000:]
    shapes = probe.stdout.strip().splitlines()[-1]
    assert shapes.startswith('(3, 8) (3, 8)') and shapes.endswith('(1728, 8)'), shapes
    assert float(shapes.split()[4]) < 1e-5


def _final_weights(run_folder):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run_folder)))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def test_a_run_killed_and_started_again_ends_with_the_uninterrupted_weights(identities, tmp_path):
    """Every random draw of the step is a function of (seed, step or stream position): dropout masks
    (models.squeezenet has dropout; the smallest side it takes is 32 px) and the random rotate, crop
    and flip. A run killed in epoch 3 and started again ends with the uninterrupted run's weights."""
    faces = identities('resume_faces', size=38)
    arguments = ['--batch_size', 8, '--epoch_size', 2, '--max_nrof_epochs', 4, '--model_def', 'models.squeezenet',
                 '--image_size', 32, '--keep_probability', 0.8, '--random_flip', '--random_crop', '--random_rotate',
                 '--optimizer', 'ADAM', '--learning_rate', 0.01, '--center_loss_factor', 0.01, '--seed', 7]
    whole = run_trainer('train_softmax.py', tiny_run_arguments(faces, tmp_path / 'whole', *arguments))
    assert whole.returncode == 0, whole.stderr[-3000:]

    broken = tmp_path / 'broken'
    process = start_trainer('train_softmax.py', tiny_run_arguments(faces, broken, *arguments))
    assert kill_at_line(process, 'Epoch: [3][2/2]') == 2  # killed in epoch 3, after the state of epoch 2 is written
    resumed = run_trainer('train_softmax.py', tiny_run_arguments(faces, broken, *arguments))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'Resuming run' in resumed.stdout and 'Epoch: [1]' not in resumed.stdout
    first_resumed = next(line for line in resumed.stdout.splitlines() if line.startswith('Epoch: [3][1/2]'))
    first_whole = next(line for line in whole.stdout.splitlines() if line.startswith('Epoch: [3][1/2]'))
    assert first_resumed.split('Loss')[1].split()[0] == first_whole.split('Loss')[1].split()[0]

    expected, got = _final_weights(the_run_folder(tmp_path / 'whole')), _final_weights(the_run_folder(broken))
    assert set(expected) == set(got)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-7, err_msg=name)


def test_seeded_dropout_masks_are_a_function_of_the_seed():
    from facenet_tf2.nets.layers import SeededDropout
    layer = SeededDropout(0.5)
    inputs = tf.ones([4, 64])
    layer.step_seed = lambda: tf.constant([3, 1], tf.int64)
    first, again = layer(inputs, training=True).numpy(), layer(inputs, training=True).numpy()
    layer.step_seed = lambda: tf.constant([3, 2], tf.int64)
    other = layer(inputs, training=True).numpy()
    assert 0.3 < np.mean(first == 0) < 0.7  # dropped at the rate, kept ones scaled by 1 / (1 - rate)
    np.testing.assert_array_equal(first, again)
    assert np.any(first != other)
    np.testing.assert_array_equal(layer(inputs, training=False).numpy(), inputs.numpy())


def test_arcface_and_cosface_runs_train(faces, tmp_path, capsys):
    for loss in ('arcface', 'cosface'):
        result = run_in_process(train_softmax, tiny_run_arguments(
            faces, tmp_path / loss, '--batch_size', 8, '--epoch_size', 3, '--max_nrof_epochs', 1, '--loss', loss,
            '--margin_s', 16), capsys)
        assert result.returncode == 0, result.stderr[-3000:]
        losses = [float(line.split('\tLoss ')[1].split('\t')[0]) for line in result.stdout.splitlines()
                  if line.startswith('Epoch: [1]')]
        assert len(losses) == 3 and all(np.isfinite(losses)) and losses[0] > 1.0


def test_bfloat16_trains_and_falls_back_to_float32_where_the_cpu_has_no_bfloat16(faces, tmp_path, capsys,
                                                                                  monkeypatch):
    """--precision bfloat16 trains in bfloat16 (finite losses, float32 weights saved); on a CPU
    without bfloat16 instructions (devices.native_bfloat16 False) the run says so in one line and
    trains in float32, the same losses as a float32 run."""
    from facenet_tf2.training import startup
    runs = {}
    for name, precision, native in (('bf16', 'bfloat16', True), ('fallback', 'bfloat16', False),
                                    ('f32', 'float32', True)):
        monkeypatch.setattr(startup, 'native_bfloat16', lambda native=native: native)
        result = run_in_process(train_softmax, tiny_run_arguments(
            faces, tmp_path / name, '--batch_size', 8, '--epoch_size', 3, '--max_nrof_epochs', 1, '--seed', 5,
            '--precision', precision), capsys)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = ([float(line.split('\tLoss ')[1].split('\t')[0]) for line in result.stdout.splitlines()
                       if line.startswith('Epoch: [1]')], result.stdout + result.stderr)
    assert 'this CPU has no bfloat16 instructions' in runs['fallback'][1]
    assert 'no bfloat16 instructions' not in runs['bf16'][1]
    assert runs['fallback'][0] == runs['f32'][0] and len(runs['f32'][0]) == 3
    assert all(np.isfinite(runs['bf16'][0])) and runs['bf16'][0] != runs['f32'][0]
    np.testing.assert_allclose(runs['bf16'][0], runs['f32'][0], rtol=0.05)


def _one_line_error(result, *expected):
    assert result.returncode == 1, result.stdout[-1000:] + result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith('train_softmax.py: '), result.stderr[-2000:]
    assert 'Traceback' not in result.stderr, result.stderr[-2000:]
    for text in expected:
        assert text in lines[-1], lines[-1]


def _linked_copy(faces, folder):
    """A dataset folder whose identity folders link to those of `faces`."""
    folder.mkdir()
    for person in faces.iterdir():
        os.symlink(person, folder / person.name)
    return folder


def test_bad_input_is_refused_in_one_line_before_building(faces, tmp_path, capsys):
    single = tmp_path / 'single'
    (single / 'Only_One').mkdir(parents=True)
    (single / 'Only_One' / 'a.png').write_bytes((next(faces.iterdir()) / os.listdir(next(faces.iterdir()))[0])
                                                 .read_bytes())
    # by path, as a user runs it; the other refusals in this process
    _one_line_error(run_trainer('train_softmax.py', tiny_run_arguments(single, tmp_path / 'r1')), 'at least 2')
    _linked_copy(faces, tmp_path / 'with_empty')
    (tmp_path / 'with_empty' / 'Nobody').mkdir()
    _one_line_error(run_in_process(train_softmax, tiny_run_arguments(tmp_path / 'with_empty', tmp_path / 'r2'),
                                   capsys), 'without images', 'Nobody')
    schedule = tmp_path / 'schedule.txt'
    schedule.write_text('# epoch: rate\n0: 0.1\n10 0.01\n')
    _one_line_error(run_in_process(train_softmax, tiny_run_arguments(
        faces, tmp_path / 'r3', '--learning_rate', -1, '--learning_rate_schedule_file', schedule), capsys),
                    'schedule.txt:3')
    _one_line_error(run_in_process(train_softmax, tiny_run_arguments(
        faces, tmp_path / 'r4', '--lfw_dir', faces, '--lfw_pairs', tmp_path / 'no_pairs.txt'), capsys),
                    '--lfw_pairs')
    unknown = tiny_run_arguments(faces, tmp_path / 'r5')
    unknown[unknown.index('models.dummy')] = 'models.no_such_network'
    _one_line_error(run_in_process(train_softmax, unknown, capsys), 'models.no_such_network')
    _one_line_error(run_in_process(train_softmax, tiny_run_arguments(tmp_path / 'missing', tmp_path / 'r6'), capsys),
                    'no such folder')
    too_small = tiny_run_arguments(faces, tmp_path / 'r7')
    too_small[too_small.index('models.dummy')] = 'models.inception_resnet_v1'
    _one_line_error(run_in_process(train_softmax, too_small, capsys),
                    'models.inception_resnet_v1 cannot be built for --image_size 24', 'Use a larger --image_size')
    for base in ('r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7'):  # refused before any run folder was made
        assert not (tmp_path / base / 'models').exists(), base


def test_a_corrupt_image_is_skipped_and_counted(faces, tmp_path, capsys):
    data = _linked_copy(faces, tmp_path / 'data')
    bad = data / 'Zz_Broken'
    bad.mkdir()
    for i in range(3):
        (bad / f'broken_{i}.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 40)
    result = run_in_process(train_softmax, tiny_run_arguments(data, tmp_path / 'run', '--batch_size', 8,
                                                                '--epoch_size', 4, '--max_nrof_epochs', 1), capsys)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'unreadable image(s) skipped' in result.stdout
    assert 'Epoch: [1][4/4]' in result.stdout


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(faces, tmp_path, capsys):
    result = run_in_process(train_softmax, tiny_run_arguments(
        faces, tmp_path, '--batch_size', 8, '--epoch_size', 1, '--max_nrof_epochs', 4, '--optimizer', 'MOM',
        '--learning_rate', 1e30), capsys)
    _one_line_error(result, 'the loss became', 'last good checkpoint')
    run = the_run_folder(tmp_path)
    steps = sorted(int(p.name.split('.ckpt-')[1].split('.')[0]) for p in run.glob('model-*.ckpt-*.index'))
    assert steps and all(np.isfinite(v).all() for v in _final_weights(run).values())
    assert not (run / 'finished').exists()


# The original train_softmax.py's parse_arguments defaults (facenet commit 096ed77).
ORIGINAL_DEFAULTS = {
    'logs_base_dir': '~/logs/facenet', 'models_base_dir': '~/models/facenet', 'gpu_memory_fraction': 1.0,
    'pretrained_model': None, 'data_dir': '~/datasets/casia/casia_maxpy_mtcnnalign_182_160',
    'model_def': 'models.inception_resnet_v1', 'max_nrof_epochs': 500, 'batch_size': 90, 'image_size': 160,
    'epoch_size': 1000, 'embedding_size': 128, 'random_crop': False, 'random_flip': False, 'random_rotate': False,
    'use_fixed_image_standardization': False, 'keep_probability': 1.0, 'weight_decay': 0.0,
    'center_loss_factor': 0.0, 'center_loss_alfa': 0.95, 'prelogits_norm_loss_factor': 0.0,
    'prelogits_norm_p': 1.0, 'prelogits_hist_max': 10.0, 'optimizer': 'ADAGRAD', 'learning_rate': 0.1,
    'learning_rate_decay_epochs': 100, 'learning_rate_decay_factor': 1.0, 'moving_average_decay': 0.9999,
    'seed': 666, 'nrof_preprocess_threads': 4, 'log_histograms': False,
    'learning_rate_schedule_file': 'data/learning_rate_schedule.txt', 'filter_filename': '',
    'filter_percentile': 100.0, 'filter_min_nrof_images_per_class': 0, 'validate_every_n_epochs': 5,
    'validation_set_split_ratio': 0.0, 'min_nrof_val_images_per_class': 0, 'lfw_pairs': 'data/pairs.txt',
    'lfw_dir': '', 'lfw_batch_size': 100, 'lfw_nrof_folds': 10, 'lfw_distance_metric': 0,
    'lfw_use_flipped_images': False, 'lfw_subtract_mean': False,
}

# The original README's VGGFace2 recipe (paths aside).
VGGFACE2_RECIPE = '''--logs_base_dir LOGS --models_base_dir MODELS --data_dir DATA --image_size 160
 --model_def models.inception_resnet_v1 --lfw_dir LFW --optimizer ADAM --learning_rate -1 --max_nrof_epochs 150
 --keep_probability 0.8 --random_crop --random_flip --use_fixed_image_standardization
 --learning_rate_schedule_file data/learning_rate_schedule_classifier_vggface2.txt --weight_decay 5e-4
 --embedding_size 512 --lfw_distance_metric 1 --lfw_use_flipped_images --lfw_subtract_mean
 --validation_set_split_ratio 0.05 --validate_every_n_epochs 5 --prelogits_norm_loss_factor 5e-4'''


def test_every_original_flag_has_its_original_default():
    parsed = vars(train_softmax.parse_arguments([]))
    assert {key: parsed[key] for key in ORIGINAL_DEFAULTS} == ORIGINAL_DEFAULTS


def test_the_original_readme_recipe_is_accepted_as_written(faces, tmp_path, monkeypatch):
    from facenet_tf2.training.config import SoftmaxConfig
    arguments = VGGFACE2_RECIPE.replace('LOGS', str(tmp_path / 'logs')).replace('MODELS', str(tmp_path / 'models'))
    arguments = arguments.replace('DATA', str(faces)).replace('LFW', str(faces)).split()
    args = train_softmax.parse_arguments(arguments + ['--lfw_pairs', str(tmp_path / 'pairs.txt')])
    (tmp_path / 'pairs.txt').write_text('1 1\n')
    monkeypatch.chdir(REPO_ROOT)  # the schedule file path is relative to the repository, as in the original README
    config = SoftmaxConfig.from_arguments(args)
    config.validate()
    assert config.learning_rate == -1 and config.optimizer == 'ADAM' and config.embedding_size == 512
    assert config.lfw_protocol().use_flipped_images and config.lfw_protocol().distance_metric == 1


def test_a_checkpoint_prefix_is_a_pretrained_model(faces, tmp_path, capsys):
    """The original took --pretrained_model as a checkpoint prefix (model-<subdir>.ckpt-<step>):
    a second run starts from the first run's weights."""
    first = run_in_process(train_softmax, tiny_run_arguments(faces, tmp_path / 'a', '--batch_size', 8,
                                                             '--epoch_size', 2, '--max_nrof_epochs', 1), capsys)
    assert first.returncode == 0, first.stderr[-2000:]
    prefix = tf.train.latest_checkpoint(str(the_run_folder(tmp_path / 'a')))
    second = run_in_process(train_softmax, tiny_run_arguments(
        faces, tmp_path / 'b', '--batch_size', 8, '--epoch_size', 1, '--max_nrof_epochs', 1, '--learning_rate',
        1e-12, '--pretrained_model', prefix, '--log_histograms'), capsys)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f'Restoring pretrained model: {prefix}' in second.stdout
    before, after = _final_weights(the_run_folder(tmp_path / 'a')), _final_weights(the_run_folder(tmp_path / 'b'))
    np.testing.assert_allclose(after['Bottleneck/weights'], before['Bottleneck/weights'], rtol=1e-5, atol=1e-6)
