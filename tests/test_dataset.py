import logging

import numpy as np
import pytest

import facenet


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / 'faces'
    layout = {
        'Bob': ['b_2.png', 'b_1.jpg', 'b_3.JPEG', 'notes.txt', '.hidden.jpg', 'Thumbs.db'],
        'Alice': ['a_1.png', 'a_2.pgm', 'a_3.bmp'],
        'Carol': [],
        'Dave': ['d_1.jpg', 'd_2.jpg', 'd_3.jpg', 'd_4.jpg', 'd_5.jpg'],
    }
    for name, files in layout.items():
        (root / name).mkdir(parents=True)
        for file in files:
            (root / name / file).write_bytes(b'x')
    (root / 'readme.txt').write_text('not a class')
    (root / 'Bob' / 'sub.jpg').mkdir()  # a folder named like an image is not an image
    return root


def test_get_dataset_sorted_classes_and_images_ignoring_other_files(tree, caplog):
    with caplog.at_level(logging.WARNING):
        dataset = facenet.get_dataset(str(tree))
    assert [cls.name for cls in dataset] == ['Alice', 'Bob', 'Carol', 'Dave']
    bob = dataset[1]
    assert [p.split('/')[-1] for p in bob.image_paths] == ['b_1.jpg', 'b_2.png', 'b_3.JPEG']
    assert len(dataset[2]) == 0  # an empty folder keeps its class index ...
    assert 'Carol' in caplog.text  # ... and is reported
    assert str(dataset[0]) == 'Alice, 3 images'


def test_get_dataset_without_class_directories(tree):
    dataset = facenet.get_dataset(str(tree / 'Dave'), has_class_directories=False)
    assert len(dataset) == 1 and dataset[0].name == 'Dave' and len(dataset[0]) == 5


def test_get_dataset_names_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        facenet.get_dataset(str(tmp_path / 'nowhere'))


def test_paths_and_labels(tree):
    paths, labels = facenet.get_image_paths_and_labels(facenet.get_dataset(str(tree)))
    assert labels == [0, 0, 0, 1, 1, 1, 3, 3, 3, 3, 3]
    assert paths[3].endswith('Bob/b_1.jpg')


def _classes(n_classes, n_images):
    return [facenet.ImageClass(f'c{i}', [f'c{i}/{j}.png' for j in range(n_images)]) for i in range(n_classes)]


def test_split_classes_keeps_every_identity():
    np.random.seed(0)
    train, test = facenet.split_dataset(_classes(10, 3), 0.3, 1, 'SPLIT_CLASSES')
    assert len(train) == 7 and len(test) == 3  # the original lost one identity here
    assert sorted(c.name for c in train + test) == sorted(f'c{i}' for i in range(10))


def test_split_images_holds_out_a_fraction_per_identity():
    dataset = _classes(4, 10) + [facenet.ImageClass('few', ['few/0.png', 'few/1.png'])]
    before = [list(c.image_paths) for c in dataset]
    np.random.seed(1)
    train, test = facenet.split_dataset(dataset, 0.2, 3, 'SPLIT_IMAGES')
    assert [c.name for c in train] == ['c0', 'c1', 'c2', 'c3']  # 'few' has 1 training image < 3
    assert all(len(c) == 8 for c in train) and all(len(c) == 2 for c in test)
    for tr, te in zip(train, test):
        assert not set(tr.image_paths) & set(te.image_paths)
    assert [c.image_paths for c in dataset] == before  # the caller's lists are not shuffled in place


def test_split_rejects_unknown_mode():
    with pytest.raises(ValueError, match='SPLIT_CLASSES'):
        facenet.split_dataset(_classes(2, 2), 0.5, 1, 'SPLIT_PEOPLE')
