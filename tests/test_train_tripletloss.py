"""train_tripletloss.py: the original's flags and defaults, refusals of unusable input, short runs of
every strategy on generated faces (one trace, stat.h5, warnings), and resume after SIGKILL giving
the weights of an uninterrupted run."""
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import tensorflow as tf

from facenet_tf2.commands import train_tripletloss
from facenet_tf2.errors import TrainingInputError
from training_fixtures import (REPO_ROOT, kill_at_line, run_trainer, script_environment, start_trainer,
                               the_run_folder, tiny_run_arguments)

DISTRIBUTED_STEP = REPO_ROOT / 'tests' / 'distributed_step.py'

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


@pytest.fixture(scope='module')
def faces(identities):
    """7 generated people with 4 images each and a file that is no image."""
    folder = identities('faces', nrof_people=7)
    for person in folder.iterdir():
        (person / 'not_a_face.png').write_bytes(b'not a png')
    return folder


@pytest.fixture(scope='module')
def few_faces(identities):
    """5 people: 3 with 2+ images, 2 with one."""
    folder = identities('few', nrof_people=3, images_per_person=3)
    for person in sorted(folder.iterdir())[:2]:
        single = folder / f'{person.name}_alone'
        single.mkdir()
        os.replace(sorted(person.iterdir())[0], single / 'face.png')
    for person in sorted(folder.iterdir()):
        if person.name.endswith('_alone'):
            continue
        for extra in sorted(person.iterdir())[:-2]:
            extra.unlink()
    return folder


@pytest.mark.parametrize('extra, message', [
    (['--batch_size', '100'], '--batch_size 100 is not a multiple of 3'),
    (['--people_per_batch', '2', '--images_per_person', '3', '--batch_size', '9'], 'fewer than one --batch_size 9'),
    (['--images_per_person', '1', '--batch_size', '3'], 'a triplet needs 2 images of a person'),
    (['--triplet_strategy', 'batch_hard'], 'must be a multiple of it holding 2 or more people'),
    (['--triplet_strategy', 'batch_all', '--images_per_person', '2', '--batch_size', '10'],
     '3 people with 2 or more images, and --triplet_strategy batch_all needs 5'),
])
def test_unusable_input_is_refused_before_training(few_faces, tmp_path, extra, message):
    with pytest.raises(TrainingInputError, match=message):
        train_tripletloss.main(train_tripletloss.parse_arguments(tiny_run_arguments(few_faces, tmp_path, *extra)))
    assert not (tmp_path / 'models').exists()


def test_a_data_dir_without_two_people_with_two_images_is_one_line(faces, tmp_path):
    data_dir = tmp_path / 'one_person'
    for person in sorted(faces.iterdir())[:3]:
        (data_dir / person.name).mkdir(parents=True)
        os.symlink(sorted(person.iterdir())[0], data_dir / person.name / 'face.png')
    os.symlink(sorted(faces.iterdir())[4], data_dir / 'several')
    result = run_trainer('train_tripletloss.py', tiny_run_arguments(data_dir, tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f'train_tripletloss.py: --data_dir {data_dir}: 1 people with 2 or more images, and --triplet_strategy '
        'vggface needs 2; add identities with several images each')


SMALL_RUN = ['--people_per_batch', 5, '--images_per_person', 4, '--batch_size', 6, '--epoch_size', 4,
             '--alpha', 0.5, '--moving_average_decay', 0.99, '--random_flip', '--seed', 3]


def final_weights(run_folder):
    reader = tf.train.load_checkpoint(str(run_folder))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


@pytest.mark.slow
def test_vggface_trains_and_a_killed_run_resumes_to_the_same_weights(faces, tmp_path):
    arguments = [*SMALL_RUN, '--max_nrof_epochs', 3]
    whole = run_trainer('train_tripletloss.py', tiny_run_arguments(faces, tmp_path / 'whole', *arguments))
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert 'The train step was traced 1 time(s)' in whole.stdout
    assert 'unreadable image(s) skipped so far, e.g.' in whole.stdout and 'not_a_face.png' in whole.stdout
    assert '(nrof_random_negs, nrof_triplets) = (' in whole.stdout
    run_folder = the_run_folder(tmp_path / 'whole')
    with h5py.File(next((tmp_path / 'whole' / 'logs').glob('*/stat.h5')), 'r') as f:
        epochs = int(np.count_nonzero(f['learning_rate'][:]))
        losses, active = f['triplet_loss'][:], f['fraction_active'][:]
    # Rounds run past epoch_size (the original's loop); tiny batches leave many triplets inactive.
    assert epochs == 3 and np.all(np.isfinite(losses)) and np.count_nonzero(losses) >= 4
    assert 0.0 < active.max() <= 1.0
    assert (run_folder / f'{run_folder.name}.pb').exists()

    broken = tmp_path / 'broken'
    process = start_trainer('train_tripletloss.py', tiny_run_arguments(faces, broken, *arguments))
    # Killed in epoch 2, after the state of epoch 1 is written.
    assert kill_at_line(process, 'Epoch: [2][2/') == 1
    resumed = run_trainer('train_tripletloss.py', tiny_run_arguments(faces, broken, *arguments))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'Resuming run' in resumed.stdout and 'Epoch: [1]' not in resumed.stdout
    expected, got = final_weights(run_folder), final_weights(the_run_folder(broken))
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize('strategy', ['batch_hard', 'batch_semihard', 'batch_all'])
def test_online_strategies_train_on_p_by_k_batches(faces, tmp_path, strategy, capsys):
    args = train_tripletloss.parse_arguments(tiny_run_arguments(
        faces, tmp_path, '--triplet_strategy', strategy, '--images_per_person', 3, '--batch_size', 12,
        '--epoch_size', 3, '--max_nrof_epochs', 2))
    model_dir = train_tripletloss.main(args)
    output = capsys.readouterr().out
    assert 'The train step was traced 1 time(s)' in output
    with h5py.File(next((tmp_path / 'logs').glob('*/stat.h5')), 'r') as f:
        losses, active, unused = f['loss'][:6], f['fraction_active'][:6], f['loss'][6:]
    # Six steps recorded (a step whose mined triplets all meet the margin has loss 0), none beyond.
    assert np.all(np.isfinite(losses)) and np.count_nonzero(losses) >= 4 and not np.any(unused)
    assert np.all((active >= 0.0) & (active <= 1.0)) and active.max() > 0.0
    assert os.path.exists(os.path.join(model_dir, os.path.basename(model_dir) + '.pb'))


def test_rounds_without_a_qualifying_triplet_are_skipped_with_a_warning(faces, tmp_path, capsys):
    args = train_tripletloss.parse_arguments(tiny_run_arguments(
        faces, tmp_path, '--people_per_batch', 3, '--images_per_person', 3, '--batch_size', 6,
        '--epoch_size', 2, '--max_nrof_epochs', 1, '--alpha', -10))
    train_tripletloss.main(args)
    captured = capsys.readouterr()
    output = captured.out
    assert captured.err.count('WARNING: no triplet violates the margin alpha -10.0') == 2
    assert '2 sampling round(s) had no triplet violating the margin and trained nothing' in output
    assert 'Epoch: [1]' not in output


@pytest.mark.slow
@pytest.mark.parametrize('loss', ['batch_hard'])
def test_mirrored_triplet_steps_equal_the_single_device_steps(tmp_path, loss):
    """Two logical CPUs: online mining gathers the global batch (through a differentiable
    all_gather), so losses and weights equal one device's over three steps. (vggface, whose
    triplets stay whole per replica, passes the same check: `distributed_step.py KIND OUT vggface`.)"""
    results = {}
    for kind in ('none', 'mirrored'):
        out = tmp_path / f'{kind}.npz'
        process = subprocess.run([sys.executable, str(DISTRIBUTED_STEP), kind, str(out), loss],
                                 env=script_environment(), capture_output=True, text=True, timeout=300, check=False)
        assert process.returncode == 0, process.stderr[-3000:]
        results[kind] = dict(np.load(out))
    single, mirrored = results['none'], results['mirrored']
    assert int(mirrored['replicas']) == 2 and int(single['tracing_count']) == int(mirrored['tracing_count']) == 1
    assert single['step1/fraction_active'] > 0.0 and single['step1/triplet_loss'] > 0.0
    for key in (key for key in single if key.startswith(('step', 'final'))):
        np.testing.assert_allclose(mirrored[key], single[key], rtol=2e-5, atol=2e-6, err_msg=key)
