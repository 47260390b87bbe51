"""A trainer's --pretrained_model of another network or embedding size than its --model_def /
--embedding_size is refused in one line that names the flag to pass."""
import importlib

import pytest

from facenet_tf2.errors import ModelLoadError
from facenet_tf2.weights import check_weights_fit, frozen_graph_weights, read_graph_def
from training_fixtures import run_trainer


def test_check_weights_fit_names_the_architecture_and_the_size(frozen_model_pb):
    weights = frozen_graph_weights(read_graph_def(str(frozen_model_pb)))
    v1, v2 = (importlib.import_module(f'models.inception_resnet_v{i}') for i in (1, 2))
    check_weights_fit(weights, v1, 128, 'm.pb')
    with pytest.raises(ModelLoadError, match=r'm\.pb: the model is inception_resnet_v1 \(128-d embeddings\), not '
                                             r'models\.inception_resnet_v2; pass --model_def models\.inception_resnet_v1'):
        check_weights_fit(weights, v2, 128, 'm.pb')
    with pytest.raises(ModelLoadError, match='the model has 128-d embeddings, not 512; pass --embedding_size 128'):
        check_weights_fit(weights, v1, 512, 'm.pb')


def test_train_tripletloss_refuses_a_pretrained_model_of_another_network(trainer_folder, identities, tmp_path):
    """The trainer's own folder (models.dummy, 8-d) given to train_tripletloss.py with its
    default --model_def (Inception-ResNet-v2), then with the right network but 16-d."""
    common = ['--data_dir', str(identities('fit_faces')), '--models_base_dir', str(tmp_path / 'models'),
              '--logs_base_dir', str(tmp_path / 'logs'), '--pretrained_model', str(trainer_folder)]
    for extra, expected in (([], 'pass --model_def models.dummy'),
                            (['--model_def', 'models.dummy', '--embedding_size', '16', '--image_size', '24'],
                             'pass --embedding_size 8')):
        result = run_trainer('train_tripletloss.py', common + extra, timeout=300)
        assert result.returncode != 0
        assert 'Traceback' not in result.stderr, result.stderr[-3000:]
        errors = [line for line in result.stderr.splitlines() if expected in line]
        assert len(errors) == 1 and str(trainer_folder) in errors[0], result.stderr[-2000:]
