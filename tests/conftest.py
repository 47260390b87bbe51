"""Shared fixtures. Real data comes from the shared folder: $FACENET_SHARED, by default ../shared
beside the repository. Tests that need it skip, saying what is missing, when it is absent."""
import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SRC = REPO_ROOT / 'src'
# Test the checkout the tests live in, even when another checkout is the installed one.
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# In-process calls of the commands report as the commands do on a console.
from facenet_tf2.reporting import show_on_console  # noqa: E402 pylint: disable=wrong-import-position

show_on_console()


def shared_path():
    return Path(os.environ.get('FACENET_SHARED', REPO_ROOT.parent / 'shared')).resolve()


def _require(relative, what):
    path = shared_path() / relative
    if not path.exists():
        pytest.skip(f'{what} not found at {path} (set FACENET_SHARED to the shared data folder)')
    return path


@pytest.fixture(scope='session')
def shared_dir():
    return _require('.', 'shared data folder')


@pytest.fixture(scope='session')
def lfw_dir():
    """The unaligned LFW deep-funneled images, Name/Name_0001.jpg."""
    return _require('lfw/lfw-deepfunneled', 'LFW images')


@pytest.fixture(scope='session')
def lfw_pairs():
    return _require('lfw/pairs.txt', 'LFW pairs.txt')


@pytest.fixture(scope='session')
def mtcnn_npy_dir():
    """The original det1.npy, det2.npy, det3.npy."""
    return _require('mtcnn', 'original MTCNN weights')


@pytest.fixture(scope='session')
def frozen_model_pb():
    """The original-format frozen graph of the 20170512-110547 model."""
    return _require('models/20170512-110547/20170512-110547.pb', 'frozen 20170512-110547 model')


@pytest.fixture(scope='session')
def reference_dir():
    """Outputs of the original facenet code (see its README.md)."""
    return _require('reference', 'reference outputs of the original code')


@pytest.fixture(scope='session')
def identities(tmp_path_factory):
    """identities(name, nrof_people=4, images_per_person=4): a folder of generated identities
    (images_fixtures.write_identity_folders), for tests that need people but not real faces."""
    from images_fixtures import write_identity_folders  # pylint: disable=import-outside-toplevel

    def make(name, **kwargs):
        return write_identity_folders(tmp_path_factory.mktemp(name) / 'train', **kwargs)
    return make


@pytest.fixture(scope='session')
def trainer_folder(identities, tmp_path_factory):
    """The model folder of a tiny train_softmax.py run (models.dummy, 24 px generated faces, 8-d
    embeddings, 2 epochs), made once per test session."""
    from training_fixtures import run_trainer, the_run_folder, tiny_run_arguments  # pylint: disable=import-outside-toplevel
    base = tmp_path_factory.mktemp('trainer')
    faces = identities('trainer_faces')
    result = run_trainer('train_softmax.py', tiny_run_arguments(faces, base, '--batch_size', 8, '--epoch_size', 2,
                                                                '--max_nrof_epochs', 2))
    assert result.returncode == 0, result.stderr[-3000:]
    return the_run_folder(base)
