"""train_tripletloss.py: the original's flags and defaults, refusals of unusable input, short runs of
every strategy on generated faces (one trace, stat.h5, warnings), and resume after SIGKILL giving
the weights of an uninterrupted run."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import train_tripletloss
from facenet_tf2.training.options import TrainingInputError
from images_fixtures import make_rgb

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / 'src' / 'train_tripletloss.py'

ORIGINAL_DEFAULTS = {
    'logs_base_dir': '~/logs/facenet', 'models_base_dir': '~/models/facenet', 'gpu_memory_fraction': 1.0,
    'pretrained_model': None, 'data_dir': '~/datasets/casia/casia_maxpy_mtcnnalign_182_160',
    'model_def': 'models.inception_resnet_v2', 'max_nrof_epochs': 500, 'batch_size': 90, 'image_size': 160,
    'people_per_batch': 45, 'images_per_person': 40, 'epoch_size': 1000, 'alpha': 0.2, 'embedding_size': 128,
    'random_crop': False, 'random_flip': False, 'keep_probability': 1.0, 'weight_decay': 0.0, 'optimizer': 'ADAGRAD',
    'learning_rate': 0.1, 'learning_rate_decay_epochs': 100, 'learning_rate_decay_factor': 1.0,
    'moving_average_decay': 0.9999, 'seed': 666, 'learning_rate_schedule_file': 'data/learning_rate_schedule.txt',
    'lfw_pairs': 'data/pairs.txt', 'lfw_dir': '', 'lfw_nrof_folds': 10}


def test_flags_and_defaults_are_the_originals():
    args = vars(train_tripletloss.parse_arguments([]))
    assert {key: args[key] for key in ORIGINAL_DEFAULTS} == ORIGINAL_DEFAULTS
    assert args['triplet_strategy'] == 'vggface'
    readme_command = ('--logs_base_dir ~/logs/facenet/ --models_base_dir ~/models/facenet/ --data_dir '
                      '~/datasets/casia/casia_maxpy_mtcnnalign_182_160 --image_size 160 --model_def '
                      'models.inception_resnet_v1 --lfw_dir ~/datasets/lfw/lfw_mtcnnalign_160 --optimizer RMSPROP '
                      '--learning_rate 0.01 --weight_decay 1e-4 --max_nrof_epochs 500 --learning_rate_schedule_file '
                      'data/learning_rate_retrain_tripletloss_casia.txt')
    args = train_tripletloss.parse_arguments(readme_command.split())
    assert (args.optimizer, args.learning_rate, args.weight_decay) == ('RMSPROP', 0.01, 1e-4)


def write_faces(folder, sizes, corrupt=()):
    """One folder per identity of small images whose colour tells the identity apart."""
    rng = np.random.default_rng(0)
    for person, size in enumerate(sizes):
        person_dir = folder / f'person{person:02d}'
        person_dir.mkdir(parents=True)
        base = rng.integers(0, 256, 3)
        for i in range(size):
            noise = make_rgb(40, 40, seed=100 * person + i).astype(np.int32) // 4
            image = np.clip(base[None, None, :] * 3 // 4 + noise, 0, 255).astype(np.uint8)
            Image.fromarray(image).save(person_dir / f'person{person:02d}_{i + 1:04d}.png')
    for person, i in corrupt:
        (folder / f'person{person:02d}' / f'person{person:02d}_{i + 1:04d}.png').write_bytes(b'not a png')
    return folder


def arguments(tmp_path, data_dir, *extra):
    return ['--data_dir', str(data_dir), '--model_def', 'models.dummy', '--image_size', '24',
            '--logs_base_dir', str(tmp_path / 'logs'), '--models_base_dir', str(tmp_path / 'models'),
            '--embedding_size', '8', '--seed', '3', *extra]


@pytest.mark.parametrize('extra, message', [
    (['--batch_size', '100'], '--batch_size 100 is not a multiple of 3'),
    (['--people_per_batch', '2', '--images_per_person', '3', '--batch_size', '9'], 'fewer than one --batch_size 9'),
    (['--images_per_person', '1', '--batch_size', '3'], 'a triplet needs 2 images of a person'),
    (['--triplet_strategy', 'batch_hard'], 'must be a multiple of it holding 2 or more people'),
    (['--triplet_strategy', 'batch_all', '--images_per_person', '2', '--batch_size', '10'],
     '3 people with 2 or more images, and --triplet_strategy batch_all needs 5'),
])
def test_unusable_input_is_refused_before_training(tmp_path, extra, message):
    data_dir = write_faces(tmp_path / 'faces', [1, 3, 1, 2, 4])
    with pytest.raises(TrainingInputError, match=message):
        train_tripletloss.main(train_tripletloss.parse_arguments(arguments(tmp_path, data_dir, *extra)))
    assert not (tmp_path / 'models').exists()


def test_a_data_dir_without_two_people_with_two_images_is_one_line(tmp_path):
    data_dir = write_faces(tmp_path / 'faces', [1, 5, 1])
    result = subprocess.run([sys.executable, str(SCRIPT), *arguments(tmp_path, data_dir)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f'train_tripletloss.py: --data_dir {data_dir}: 1 people with 2 or more images, and --triplet_strategy '
        'vggface needs 2; add identities with several images each')


SMALL_RUN = ['--people_per_batch', '5', '--images_per_person', '4', '--batch_size', '6', '--epoch_size', '4',
             '--alpha', '0.5', '--moving_average_decay', '0.99']


def final_weights(models_dir):
    (run_dir,) = list(Path(models_dir).iterdir())
    reader = tf.train.load_checkpoint(str(run_dir))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}, run_dir


def run_script(args, **kwargs):
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT / 'src')), **kwargs)


def test_vggface_trains_and_a_killed_run_resumes_to_the_same_weights(tmp_path):
    data_dir = write_faces(tmp_path / 'faces', [4, 5, 2, 6, 4, 3, 5], corrupt=[(3, 2)])
    uninterrupted = arguments(tmp_path / 'a', data_dir, *SMALL_RUN, '--max_nrof_epochs', '4')
    process = run_script(uninterrupted)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    assert 'The train step was traced 1 time(s)' in output
    assert 'unreadable image(s) skipped so far' in output and 'person03_0003.png' in output
    assert '(nrof_random_negs, nrof_triplets) = (' in output
    expected, run_dir = final_weights(tmp_path / 'a' / 'models')
    with h5py.File(next((tmp_path / 'a' / 'logs').glob('*/stat.h5')), 'r') as f:
        steps = int(np.count_nonzero(f['learning_rate'][:]))
        losses, active = f['triplet_loss'][:], f['fraction_active'][:]
    # Rounds run past epoch_size (the original's loop); tiny batches leave many triplets inactive.
    assert steps == 4 and np.all(np.isfinite(losses)) and np.count_nonzero(losses) >= 4
    assert 0.0 < active.max() <= 1.0
    assert (run_dir / f'{run_dir.name}.pb').exists()

    interrupted = arguments(tmp_path / 'b', data_dir, *SMALL_RUN, '--max_nrof_epochs', '4')
    process = run_script(interrupted)
    deadline = time.time() + 240
    while not list((tmp_path / 'b' / 'models').glob('*/training_state/checkpoint')):
        assert process.poll() is None and time.time() < deadline, 'the run ended before its first epoch was saved'
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (killed_run,) = list((tmp_path / 'b' / 'models').iterdir())
    assert not (killed_run / 'finished').exists(), 'killed too late to test resuming'
    process = run_script(interrupted)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    assert f'Resuming run {killed_run.name}' in output
    resumed, _ = final_weights(tmp_path / 'b' / 'models')
    assert sorted(resumed) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(resumed[name], value, rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize('strategy', ['batch_hard', 'batch_semihard', 'batch_all'])
def test_online_strategies_train_on_p_by_k_batches(tmp_path, strategy, capsys):
    data_dir = write_faces(tmp_path / 'faces', [4, 5, 2, 6, 4, 3])
    args = train_tripletloss.parse_arguments(arguments(
        tmp_path, data_dir, '--triplet_strategy', strategy, '--images_per_person', '3', '--batch_size', '12',
        '--epoch_size', '3', '--max_nrof_epochs', '2'))
    model_dir = train_tripletloss.main(args)
    output = capsys.readouterr().out
    assert 'The train step was traced 1 time(s)' in output
    with h5py.File(next((tmp_path / 'logs').glob('*/stat.h5')), 'r') as f:
        active = f['fraction_active'][:6]
        assert np.all(np.isfinite(f['loss'][:6])) and np.count_nonzero(f['loss'][:6]) == 6
    assert np.all((active >= 0.0) & (active <= 1.0)) and active.max() > 0.0
    assert os.path.exists(os.path.join(model_dir, os.path.basename(model_dir) + '.pb'))


def test_rounds_without_a_qualifying_triplet_are_skipped_with_a_warning(tmp_path, capsys):
    data_dir = write_faces(tmp_path / 'faces', [4, 5, 3])
    args = train_tripletloss.parse_arguments(arguments(
        tmp_path, data_dir, '--people_per_batch', '3', '--images_per_person', '3', '--batch_size', '6',
        '--epoch_size', '2', '--max_nrof_epochs', '1', '--alpha', '-10'))
    train_tripletloss.main(args)
    output = capsys.readouterr().out
    assert output.count('WARNING: no triplet violates the margin alpha -10.0') == 2
    assert '2 sampling round(s) had no triplet violating the margin and trained nothing' in output
    assert 'Epoch: [1]' not in output
