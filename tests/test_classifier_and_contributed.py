"""classifier.py and the contributed tools (export_embeddings.py, face.py) on real LFW faces with
the shared 20170512-110547 model: identities with the most images in ../shared, aligned by our
aligner as align_dataset_mtcnn.py --image_size 160 --margin 32 would."""
import importlib.util
import pickle

import numpy as np
import pytest

from facenet_tf2.commands import classifier
import facenet
from facenet_tf2.detection.aligner import align_dataset
from conftest import REPO_ROOT

IDENTITIES = ['Hans_Blix', 'Jean_Chretien', 'Silvio_Berlusconi', 'Tony_Blair']  # 12 to 14 images each


@pytest.fixture(scope='module', autouse=True)
def load_each_model_once():
    """The scripts here each load the model; loading and tracing it once keeps the module fast."""
    cache = {}
    original = facenet.load_model

    def cached(model, *args, **kwargs):
        key = (str(model), args, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = original(model, *args, **kwargs)
        return cache[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(facenet, 'load_model', cached)
        yield


def _contributed(name):
    spec = importlib.util.spec_from_file_location(f'contributed_{name}', REPO_ROOT / 'contributed' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _link_identities(root, lfw_dir, names):
    root.mkdir()
    for name in names:
        (root / name).symlink_to(lfw_dir / name, target_is_directory=True)
    return root


@pytest.fixture(scope='module')
def faces(tmp_path_factory, lfw_dir):
    """(unaligned dataset folder, aligned 160x160 dataset folder)."""
    base = tmp_path_factory.mktemp('faces')
    raw = _link_identities(base / 'raw', lfw_dir, IDENTITIES)
    summary = align_dataset(str(raw), str(base / 'aligned'), image_size=160, margin=32, progress=False)
    assert summary.nrof_images_aligned == summary.nrof_images_total == 53
    return raw, base / 'aligned'


@pytest.fixture(scope='module')
def trained(faces, frozen_model_pb, tmp_path_factory):
    """A classifier trained on 6 images of each identity (the rest are its test set)."""
    _, aligned = faces
    pkl = tmp_path_factory.mktemp('clf') / 'classifier.pkl'
    classifier.main(classifier.parse_arguments(['TRAIN', str(aligned), str(frozen_model_pb), str(pkl),
                                                '--use_split_dataset', '--min_nrof_images_per_class', '10',
                                                '--nrof_train_images_per_class', '6', '--batch_size', '16']))
    return pkl


def test_classifier_train_then_classify_the_held_out_images(faces, frozen_model_pb, trained, capsys):
    _, aligned = faces
    with open(trained, 'rb') as f:
        svm, class_names = pickle.load(f)
    assert class_names == ['Hans Blix', 'Jean Chretien', 'Silvio Berlusconi', 'Tony Blair']
    assert svm.n_features_in_ == 128 and list(svm.classes_) == [0, 1, 2, 3]
    accuracy = classifier.main(classifier.parse_arguments(['CLASSIFY', str(aligned), str(frozen_model_pb), str(trained),
                                                           '--use_split_dataset', '--min_nrof_images_per_class', '10',
                                                           '--nrof_train_images_per_class', '6']))
    out = capsys.readouterr().out
    assert 'Number of images: 29' in out  # 53 images less 4 x 6 training images
    assert len([line for line in out.splitlines() if line[:4].strip().isdigit() and ': ' in line]) == 29
    assert accuracy >= 0.95


def test_classifier_scores_a_separate_test_folder_by_name(faces, frozen_model_pb, trained, tmp_path, capsys):
    """The original ignored --test_data_dir and compared folder indices; a test folder holding two of
    the four identities (indices 0 and 1 there, 1 and 3 in training) is scored by name here."""
    _, aligned = faces
    test_dir = _link_identities(tmp_path / 'test', aligned, ['Jean_Chretien', 'Tony_Blair'])
    accuracy = classifier.main(classifier.parse_arguments(['CLASSIFY', str(aligned), str(frozen_model_pb), str(trained),
                                                           '--test_data_dir', str(test_dir)]))
    out = capsys.readouterr().out
    assert 'Number of classes: 2' in out
    assert accuracy >= 0.95


def test_export_embeddings_of_aligned_images(faces, frozen_model_pb, tmp_path):
    _, aligned = faces
    export = _contributed('export_embeddings')
    names = [str(tmp_path / name) for name in ('emb.npy', 'labels.npy', 'strings')]
    export.main(export.parse_arguments([str(frozen_model_pb), str(aligned), '--image_batch', '20',
                                        '--embeddings_name', names[0], '--labels_name', names[1],
                                        '--labels_strings_name', names[2]]))
    embeddings, labels = np.load(names[0]), np.load(names[1])
    strings = np.load(names[2] + '.npy')  # np.save's naming, as the original
    paths, expected_labels = facenet.get_image_paths_and_labels(facenet.get_dataset(str(aligned)))
    assert embeddings.shape == (53, 128) and list(labels) == expected_labels
    assert [s for s in strings] == [IDENTITIES[label] for label in labels]
    model = facenet.load_model(str(frozen_model_pb))
    expected = model(facenet.load_data(paths[:5], False, False, 160).astype(np.float32)).numpy()
    assert np.abs(embeddings[:5] - expected).max() < 1e-5


def test_export_embeddings_aligns_on_the_fly(faces, frozen_model_pb, tmp_path):
    raw, _ = faces
    export = _contributed('export_embeddings')
    names = [str(tmp_path / name) for name in ('emb.npy', 'labels.npy', 'strings.npy')]
    export.main(export.parse_arguments([str(frozen_model_pb), str(raw), '--is_aligned', 'False', '--image_batch', '32',
                                        '--embeddings_name', names[0], '--labels_name', names[1],
                                        '--labels_strings_name', names[2]]))
    embeddings, labels = np.load(names[0]), np.load(names[1])
    assert embeddings.shape == (53, 128) and len(labels) == 53
    same = labels[:, None] == labels[None, :]
    distances = np.sum(np.square(embeddings[:, None] - embeddings[None, :]), axis=2)
    same_mean, different_mean = distances[same & ~np.eye(53, dtype=bool)].mean(), distances[~same].mean()
    assert same_mean + 0.4 < different_mean


def test_face_recognition_names_people_in_unaligned_photos(faces, frozen_model_pb, trained, lfw_dir):
    face = _contributed('face')
    # The original's usage: the module-level settings, set after the import, are read when built.
    face.facenet_model_checkpoint, face.classifier_model = str(frozen_model_pb), str(trained)
    recognition = face.Recognition()
    assert recognition.encoder.model.source == str(frozen_model_pb)
    correct = 0
    for name in IDENTITIES:
        image = facenet.read_image(sorted((lfw_dir / name).glob('*.jpg'))[-1])
        found = recognition.identify(image)
        assert len(found) >= 1
        main = max(found, key=lambda f: (f.bounding_box[2] - f.bounding_box[0]) * (f.bounding_box[3] - f.bounding_box[1]))
        assert main.image.shape == (160, 160, 3) and main.embedding.shape == (128,)
        correct += main.name == name.replace('_', ' ')
    assert correct >= 3
    added = recognition.add_identity(facenet.read_image(sorted((lfw_dir / 'Tony_Blair').glob('*.jpg'))[0]), 'TB')
    assert added is not None and added[0].name == 'TB'
    assert abs(np.linalg.norm(added[0].embedding) - 1) < 1e-5


def test_one_image_per_identity_still_trains(faces, frozen_model_pb):
    """Users often enrol one photo per person; the original's SVC(probability=True) allowed it."""
    model = facenet.load_model(str(frozen_model_pb))
    paths = [sorted((faces[1] / name).glob('*.png'))[0] for name in IDENTITIES]
    embeddings = model(facenet.load_data([str(p) for p in paths], False, False, 160).astype(np.float32)).numpy()
    svm = classifier.train_classifier(embeddings, [0, 1, 2, 3])
    predicted, probabilities = classifier.classify(svm, embeddings)
    assert list(predicted) == [0, 1, 2, 3] and np.all((probabilities > 0.25) & (probabilities <= 1))
