"""calculate_filtering_metrics.py and facenet_tf2.training.filtering: distances to the class
centre on real faces with the shared model, the HDF5 it writes, and filter_dataset on it."""
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from PIL import Image

from facenet_tf2.commands import calculate_filtering_metrics
import facenet
from conftest import REPO_ROOT
from images_fixtures import make_rgb
from facenet_tf2.dataset import ImageClass
from facenet_tf2.embeddings import embed_images, embed_images_resumably
from facenet_tf2.errors import PathError
from facenet_tf2.images import read_image
from facenet_tf2.training.filtering import (distance_to_center, filter_dataset, find_threshold,
                                            read_filtering_metrics, write_filtering_metrics)

IDENTITIES = ['Abdullah_Gul', 'Adrien_Brody', 'Al_Sharpton', 'Alan_Greenspan']
# Another person's face filed under the first identity: the outlier filtering exists to find.
IMPOSTOR = ('Angela_Merkel/Angela_Merkel_0001.jpg', 'Abdullah_Gul/Abdullah_Gul_9999.png')
SCRIPT = REPO_ROOT / 'src' / 'calculate_filtering_metrics.py'


def _centre_crop(lfw_dir, relative):
    """The central 160x160 of a 250x250 deep-funneled image (as the training reference's batch)."""
    return read_image(lfw_dir / relative)[45:205, 45:205]


@pytest.fixture(scope='module')
def faces_dir(lfw_dir, tmp_path_factory):
    """4 identities x 4 centre-cropped LFW faces, plus the impostor in the first identity."""
    root = tmp_path_factory.mktemp('faces')
    for name in IDENTITIES:
        (root / name).mkdir()
        for file in sorted(os.listdir(lfw_dir / name))[:4]:
            Image.fromarray(_centre_crop(lfw_dir, f'{name}/{file}')).save(root / name / file.replace('.jpg', '.png'))
    Image.fromarray(_centre_crop(lfw_dir, IMPOSTOR[0])).save(root / IMPOSTOR[1])
    return root


@pytest.fixture(scope='module')
def metrics_file(faces_dir, frozen_model_pb, tmp_path_factory):
    filename = tmp_path_factory.mktemp('metrics') / 'out' / 'filtering.h5'
    calculate_filtering_metrics.main(calculate_filtering_metrics.parse_arguments(
        [str(faces_dir), str(frozen_model_pb), str(filename), '--batch_size', '7']))
    return filename


def test_writes_the_original_keys_and_distances_to_the_class_centre(faces_dir, frozen_model_pb, metrics_file):
    dataset = facenet.get_dataset(str(faces_dir))
    image_list, label_list = facenet.get_image_paths_and_labels(dataset)
    with h5py.File(metrics_file, 'r') as f:
        assert sorted(f.keys()) == ['class_names', 'distance_to_center', 'image_list', 'label_list']
        assert list(f['class_names'].asstr()[()]) == IDENTITIES
        assert list(f['image_list'].asstr()[()]) == image_list
        np.testing.assert_array_equal(f['label_list'][()], label_list)
        distances = f['distance_to_center'][()]
    # Direct: embed the prewhitened crops with the model, centre = mean embedding of the class.
    model = facenet.load_model(str(frozen_model_pb))
    embeddings = np.asarray(model(np.stack([facenet.prewhiten(read_image(p)) for p in image_list]).astype(np.float32)),
                            np.float64)
    labels = np.array(label_list)
    centres = np.stack([embeddings[labels == label].mean(axis=0) for label in range(len(IDENTITIES))])
    np.testing.assert_allclose(distances, np.linalg.norm(embeddings - centres[labels], axis=1), atol=2e-5)
    assert not os.path.exists(str(metrics_file) + '.parts')  # the saved chunks are removed at the end
    impostor = image_list.index(str(faces_dir / IMPOSTOR[1]))
    genuine = np.delete(distances, impostor)
    assert distances[impostor] == distances.max() and distances[impostor] > 2 * genuine.max()
    assert 0.2 < genuine.min() and genuine.max() < 0.6


def test_filter_dataset_drops_the_impostor_and_leaves_the_callers_dataset(faces_dir, metrics_file):
    dataset = facenet.get_dataset(str(faces_dir))
    before = [list(cls.image_paths) for cls in dataset]
    filtered = filter_dataset(dataset, str(metrics_file), 95.0, 4)
    assert [cls.name for cls in filtered] == IDENTITIES
    assert [len(cls.image_paths) for cls in filtered] == [4, 4, 4, 4]
    assert str(faces_dir / IMPOSTOR[1]) not in filtered[0].image_paths
    assert [list(cls.image_paths) for cls in dataset] == before
    # Every class is left with 4 images, fewer than 5.
    assert filter_dataset(dataset, str(metrics_file), 95.0, 5) == []
    # As in the original, percentile 100 still drops the images in the upper half of the last bin.
    assert [len(cls.image_paths) for cls in filter_dataset(dataset, str(metrics_file), 100.0, 0)] == [4, 4, 4, 4]


def test_filter_dataset_matches_classes_by_name_not_index(faces_dir, metrics_file):
    """A dataset read from another spelling of the folder, with an extra class sorted first (which
    shifts every label by one), still loses exactly the impostor."""
    dataset = [ImageClass('Aaron_Extra', ['elsewhere/Aaron_Extra/a.png'])] + facenet.get_dataset(
        os.path.relpath(faces_dir))
    filtered = filter_dataset(dataset, str(metrics_file), 95.0, 0)
    assert [len(cls.image_paths) for cls in filtered] == [1, 4, 4, 4, 4]
    assert all(not path.endswith('_9999.png') for cls in filtered for path in cls.image_paths)


def test_distance_to_center_against_direct_formula():
    embeddings = np.array([[0.0, 0.0], [2.0, 0.0], [9.0, 9.0], [1.0, 1.0], [1.0, 3.0], [5.0, 5.0]])
    labels = np.array([0, 0, 0, 1, 1, 2])
    found = np.array([True, True, False, True, True, False])
    distances = distance_to_center(embeddings, labels, found)
    np.testing.assert_allclose(distances[[0, 1, 3, 4]], [1.0, 1.0, 1.0, 1.0])
    assert np.isnan(distances[2]) and np.isnan(distances[5])  # unreadable; class 2 has no readable image
    np.testing.assert_allclose(distance_to_center(embeddings, labels)[:3],
                               np.linalg.norm(embeddings[:3] - embeddings[:3].mean(axis=0), axis=1))


def test_find_threshold_is_the_originals_histogram_interpolation():
    distances = np.random.default_rng(3).gamma(4.0, 0.1, size=1000)
    hist, edges = np.histogram(distances, 100)
    cdf = np.cumsum(hist) / hist.sum()
    centres = (edges[:-1] + edges[1:]) / 2
    for percentile in (10.0, 50.0, 90.0, 99.0):
        assert find_threshold(distances, percentile) == pytest.approx(np.interp(percentile / 100, cdf, centres),
                                                                      rel=1e-6)
        # close to the empirical percentile (within a bin width)
        assert abs(find_threshold(distances, percentile) - np.percentile(distances, percentile)) < edges[1] - edges[0]
    with_nan = np.append(distances, np.nan)
    assert find_threshold(with_nan, 50.0) == find_threshold(distances, 50.0)


def _write_metrics(filename, classes, image_list, label_list, distances):
    write_filtering_metrics(filename, [ImageClass(name, []) for name in classes], image_list, label_list, distances)


def test_bad_metrics_files_are_errors_naming_the_file(tmp_path):
    dataset = [ImageClass('A', ['d/A/1.png', 'd/A/2.png']), ImageClass('B', ['d/B/1.png'])]
    cases = {
        'missing.h5': None,
        'other_class.h5': (['A', 'C'], ['d/A/1.png', 'd/C/1.png'], [0, 1], [0.1, 0.2]),
        'other_image.h5': (['A', 'B'], ['d/A/1.png', 'd/A/3.png'], [0, 0], [0.1, 0.2]),
        'bad_label.h5': (['A', 'B'], ['d/A/1.png', 'd/B/1.png'], [0, 2], [0.1, 0.2]),
        'lengths.h5': (['A', 'B'], ['d/A/1.png', 'd/B/1.png'], [0, 1], [0.1]),
    }
    expected = {'missing.h5': 'cannot read the filtering HDF5', 'other_class.h5': '1 of its classes are not in the '
                'dataset, e.g. C', 'other_image.h5': '1 of its images are not in the dataset, e.g. A/3.png',
                'bad_label.h5': 'label 2 is not one of its 2 classes', 'lengths.h5': '2 images, 2 labels and 1 distances'}
    for name, content in cases.items():
        if content:
            _write_metrics(tmp_path / name, *content)
        with pytest.raises(PathError, match=str(tmp_path / name) + ': ' + expected[name]):
            filter_dataset(dataset, str(tmp_path / name), 90.0, 0)
    with h5py.File(tmp_path / 'keys.h5', 'w') as f:
        f.create_dataset('label_list', data=[0])
    with pytest.raises(PathError, match='keys.h5: not a filtering metrics file: no class_names, image_list, '
                                        'distance_to_center'):
        filter_dataset(dataset, str(tmp_path / 'keys.h5'), 90.0, 0)


def test_reads_python2_files_of_the_original(tmp_path):
    """The original (Python 2 h5py) wrote fixed-length byte strings."""
    with h5py.File(tmp_path / 'py2.h5', 'w') as f:
        f.create_dataset('class_names', data=np.array([b'A', b'B']))
        f.create_dataset('image_list', data=np.array([b'/x/A/1.png', b'/x/A/2.png', b'/x/B/1.png']))
        f.create_dataset('label_list', data=np.array([0, 0, 1]))
        f.create_dataset('distance_to_center', data=np.array([0.1, 0.9, 0.2]))
    assert read_filtering_metrics(tmp_path / 'py2.h5')[:2] == (['A', 'B'], ['/x/A/1.png', '/x/A/2.png', '/x/B/1.png'])
    dataset = [ImageClass('A', ['/x/A/1.png', '/x/A/2.png']), ImageClass('B', ['/x/B/1.png'])]
    assert [cls.image_paths for cls in filter_dataset(dataset, str(tmp_path / 'py2.h5'), 90.0, 0)] == [
        ['/x/A/1.png'], ['/x/B/1.png']]


def _start_script(*args):
    env = {**os.environ, 'PYTHONPATH': str(REPO_ROOT / 'src'), 'TF_CPP_MIN_LOG_LEVEL': '3'}
    return subprocess.Popen([sys.executable, str(SCRIPT), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_script_user_errors_are_one_line(faces_dir, tmp_path):
    runs = {f'{tmp_path / "nowhere"}: no such dataset folder, check the path':
            _start_script(tmp_path / 'nowhere', tmp_path / 'model.pb', tmp_path / 'out.h5'),
            f'{tmp_path / "model.pb"}: no such file or directory; give a model file or folder':
            _start_script(faces_dir, tmp_path / 'model.pb', tmp_path / 'out.h5')}
    for message, run in runs.items():
        _, err = run.communicate(timeout=300)
        assert run.returncode == 1
        lines = err.strip().splitlines()
        assert lines[-1].startswith(f'calculate_filtering_metrics.py: {message}'), lines[-1]
        assert 'Traceback' not in err
    assert not (tmp_path / 'out.h5').exists()


class _ChannelMeans:
    """A stand-in model: embeddings are the channel means; counts the images it sees and fails
    (like a killed run) once it has seen `fail_after` images."""

    def __init__(self, fail_after=None):
        self.seen = 0
        self.fail_after = fail_after

    def __call__(self, images):
        if self.fail_after is not None and self.seen >= self.fail_after:
            raise KeyboardInterrupt
        self.seen += int(images.shape[0])
        return np.asarray(images).mean(axis=(1, 2))


def test_embedding_resumes_from_the_saved_chunks(tmp_path):
    paths = []
    for i in range(10):
        paths.append(str(tmp_path / f'{i}.png'))
        Image.fromarray(make_rgb(20, 20, seed=i)).save(paths[-1])
    (tmp_path / '4.png').write_text('not an image')
    progress = tmp_path / 'progress'
    with pytest.raises(KeyboardInterrupt):
        embed_images_resumably(_ChannelMeans(fail_after=6), paths, 16, 2, progress, chunk_size=3,
                               unreadable=facenet.UnreadableImages())
    assert sorted(os.listdir(progress)) == ['chunk_000000.npz', 'chunk_000001.npz']
    model = _ChannelMeans()
    resumed = embed_images_resumably(model, paths, 16, 2, progress, chunk_size=3, unreadable=facenet.UnreadableImages())
    assert model.seen == 4  # only the chunks after the two saved ones: images 6 to 9
    whole = embed_images(_ChannelMeans(), paths, 16, 2, unreadable=facenet.UnreadableImages())
    np.testing.assert_array_equal(resumed.embeddings, whole.embeddings)
    np.testing.assert_array_equal(resumed.found, [i != 4 for i in range(10)])
    assert resumed.nrof_embedded == whole.nrof_embedded == 10
    # Saved chunks of another image list are not used.
    model = _ChannelMeans()
    embed_images_resumably(model, paths[::-1], 16, 2, progress, chunk_size=3, unreadable=facenet.UnreadableImages())
    assert model.seen == 9
