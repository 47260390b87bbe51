import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import facenet
from images_fixtures import write_bad_and_odd_images


def _write(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        paths.append(str(folder / f'{i}.png'))
        Image.fromarray(image).save(paths[-1])
    return paths


@pytest.fixture
def squares(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (182, 182, 3), dtype=np.uint8) for _ in range(6)]
    return _write(tmp_path / 'sq', images), images


def _collect(dataset):
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(images), np.concatenate(labels)


def test_control_flags_decode_crop_standardise_flip(squares):
    paths, images = squares
    control = [0, facenet.FIXED_STANDARDIZATION, facenet.FLIP, facenet.FIXED_STANDARDIZATION + facenet.FLIP, 0, 0]
    out, labels = _collect(facenet.create_input_pipeline(paths, list(range(6)), control, 160, 4))
    assert out.shape == (6, 160, 160, 3) and out.dtype == np.float32
    assert list(labels) == list(range(6))
    central = [image[11:171, 11:171] for image in images]
    assert np.abs(out[0] - facenet.prewhiten(central[0])).max() < 1e-5
    assert np.abs(out[1] - (central[1] - 127.5) / 128).max() < 1e-6
    assert np.abs(out[2] - facenet.prewhiten(central[2])[:, ::-1]).max() < 1e-5
    assert np.abs(out[3] - (central[3][:, ::-1] - 127.5) / 128).max() < 1e-6


def test_random_crop_and_flip_are_seeded(squares):
    paths, images = squares
    control = facenet.RANDOM_CROP + facenet.RANDOM_FLIP + facenet.FIXED_STANDARDIZATION

    def run(seed):
        return _collect(facenet.create_input_pipeline(paths, list(range(6)), control, 160, 4, seed=seed))[0]

    first, again, other = run(7), run(7), run(8)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    for out, image in zip(first, images):
        pixels = np.round(out * 128 + 127.5).astype(np.uint8)
        # Each output is some 160x160 window of its image, possibly mirrored.
        found = any(np.array_equal(pixels, candidate[top:top + 160, left:left + 160])
                    for candidate in (image, image[:, ::-1]) for top in range(23) for left in range(23))
        assert found


def test_iterating_again_draws_new_augmentations_but_stays_repeatable(squares):
    paths, _ = squares
    control = facenet.RANDOM_CROP + facenet.FIXED_STANDARDIZATION
    dataset = facenet.create_input_pipeline(paths, list(range(6)), control, 160, 6, seed=3)
    epoch1, epoch2 = _collect(dataset)[0], _collect(dataset)[0]
    assert not np.array_equal(epoch1, epoch2)
    rerun = facenet.create_input_pipeline(paths, list(range(6)), control, 160, 6, seed=3)
    assert np.array_equal(_collect(rerun)[0], epoch1) and np.array_equal(_collect(rerun)[0], epoch2)


def test_shuffle_keeps_images_with_their_labels(squares):
    paths, _ = squares
    control = facenet.FIXED_STANDARDIZATION
    plain, plain_labels = _collect(facenet.create_input_pipeline(paths, list(range(6)), control, 160, 6))
    shuffled, labels = _collect(facenet.create_input_pipeline(paths, list(range(6)), control, 160, 6,
                                                              shuffle=True, seed=1))
    assert sorted(labels) == list(range(6)) and list(labels) != list(range(6))
    for image, label in zip(shuffled, labels):
        assert np.array_equal(image, plain[label])


def _bar_angle(image):
    ys, xs = np.nonzero(image[:, :, 0] > 128)
    cov = np.cov(np.stack([xs, ys]))
    vals, vecs = np.linalg.eigh(cov)
    direction = vecs[:, np.argmax(vals)]
    return np.degrees(np.arctan2(direction[1], direction[0]))


def test_random_rotation_stays_within_ten_degrees(tmp_path):
    bar = np.zeros((160, 160, 3), np.uint8)
    bar[78:82, 20:140] = 255
    paths = _write(tmp_path / 'bar', [bar] * 24)
    control = facenet.RANDOM_ROTATE + facenet.FIXED_STANDARDIZATION
    out, _ = _collect(facenet.create_input_pipeline(paths, [0] * 24, control, 160, 24, seed=5))
    angles = []
    for image in out:
        angle = _bar_angle(np.round(image * 128 + 127.5))
        angle = (angle + 90) % 180 - 90
        angles.append(angle)
    angles = np.array(angles)
    assert np.all(np.abs(angles) <= 10.5)
    assert angles.min() < -3 and angles.max() > 3  # both directions, not a fixed angle
    assert len(np.unique(np.round(angles, 1))) > 12


def test_unreadable_files_are_skipped_and_counted(tmp_path):
    paths, _ = write_bad_and_odd_images(tmp_path / 'imgs')
    order = ['good', 'truncated', 'gray16', 'text', 'rgba', 'empty', 'gray']
    files = [str(paths[kind]) for kind in order]
    unreadable = facenet.UnreadableImages()
    dataset = facenet.create_input_pipeline(files, list(range(len(files))), facenet.FIXED_STANDARDIZATION, 40, 3,
                                            unreadable=unreadable)
    out, labels = _collect(dataset)
    assert list(labels) == [0, 2, 4, 6]
    assert out.shape == (4, 40, 40, 3)
    assert sorted(path for path, _ in unreadable.failures) == sorted(files[i] for i in (1, 3, 5))
    assert len(unreadable) == 3 and '3 unreadable image(s) skipped' in unreadable.summary()


def test_unreadable_file_stops_iteration_with_its_name_by_default(tmp_path):
    paths, _ = write_bad_and_odd_images(tmp_path / 'imgs')
    dataset = facenet.create_input_pipeline([str(paths['good']), str(paths['text'])], [0, 1], 0, 40, 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match='text.jpg'):
        _collect(dataset)


def test_real_lfw_images_through_the_pipeline(lfw_dir):
    paths = sorted(str(p) for p in (lfw_dir / 'Aaron_Peirsol').glob('*.jpg'))
    out, _ = _collect(facenet.create_input_pipeline(paths, [0] * len(paths), 0, 160, 3))
    expected = [tf.image.per_image_standardization(facenet.read_image(p)[45:205, 45:205]).numpy() for p in paths]
    assert out.shape == (len(paths), 160, 160, 3)
    assert max(np.abs(a - b).max() for a, b in zip(out, expected)) < 1e-5


def test_control_flag_bits():
    assert facenet.get_control_flag(facenet.FLIP + facenet.RANDOM_CROP, facenet.FLIP).numpy()
    assert not facenet.get_control_flag(facenet.FLIP + facenet.RANDOM_CROP, facenet.RANDOM_FLIP).numpy()


def test_mismatched_labels_are_rejected():
    with pytest.raises(ValueError, match='2 image paths but 1 labels'):
        facenet.create_input_pipeline(['a.png', 'b.png'], [0], 0, 160, 1)
