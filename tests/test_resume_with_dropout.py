"""Exact resume with every random draw of the train step: dropout masks (seeded by seed, global
step and layer) and the random rotate, crop and flip (seeded by seed and stream position)."""
import numpy as np
import pytest
import tensorflow as tf

from training_fixtures import kill_at_line, run_trainer, start_trainer, the_run_folder, write_face_folders

SIZE = 32  # the smallest side models.squeezenet (which has dropout) takes


def _arguments(faces, base, *extra):
    return ['--data_dir', str(faces), '--models_base_dir', str(base / 'models'), '--logs_base_dir', str(base / 'logs'),
            '--model_def', 'models.squeezenet', '--image_size', str(SIZE), '--embedding_size', '8',
            '--batch_size', '8', '--epoch_size', '2', '--max_nrof_epochs', '3', '--seed', '5',
            '--optimizer', 'ADAM', '--learning_rate', '0.01', '--random_crop', '--random_flip', '--random_rotate',
            *map(str, extra)]


def _final_weights(run_folder):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run_folder)))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


@pytest.mark.slow
def test_a_run_with_dropout_and_augmentation_resumes_to_the_uninterrupted_weights(lfw_dir, tmp_path):
    faces = write_face_folders(lfw_dir, tmp_path / 'faces', size=SIZE + 6)
    whole = run_trainer('train_softmax.py', _arguments(faces, tmp_path / 'whole', '--keep_probability', 0.8))
    assert whole.returncode == 0, whole.stderr[-3000:]

    broken = tmp_path / 'broken'
    process = start_trainer('train_softmax.py', _arguments(faces, broken, '--keep_probability', 0.8))
    assert kill_at_line(process, 'Epoch: [2][1/2]') == 1  # killed in epoch 2, after epoch 1 was saved
    resumed = run_trainer('train_softmax.py', _arguments(faces, broken, '--keep_probability', 0.8))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'Resuming run' in resumed.stdout and 'Epoch: [1]' not in resumed.stdout
    first_resumed = next(line for line in resumed.stdout.splitlines() if line.startswith('Epoch: [2][1/2]'))
    first_whole = next(line for line in whole.stdout.splitlines() if line.startswith('Epoch: [2][1/2]'))
    assert first_resumed.split('Loss')[1].split()[0] == first_whole.split('Loss')[1].split()[0]

    expected, got = _final_weights(the_run_folder(tmp_path / 'whole')), _final_weights(the_run_folder(broken))
    assert set(expected) == set(got)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-7, err_msg=name)

    # The masks are drawn: without dropout the same run ends elsewhere.
    kept = run_trainer('train_softmax.py', _arguments(faces, tmp_path / 'kept', '--keep_probability', 1.0))
    assert kept.returncode == 0, kept.stderr[-3000:]
    without = _final_weights(the_run_folder(tmp_path / 'kept'))
    assert np.abs(without['squeezenet/Bottleneck/weights'] - expected['squeezenet/Bottleneck/weights']).max() > 1e-4
