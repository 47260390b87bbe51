import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import facenet
from images_fixtures import write_bad_and_odd_images


@pytest.fixture
def odd_images(tmp_path):
    return write_bad_and_odd_images(tmp_path / 'imgs')


@pytest.mark.parametrize('kind, problem', [
    ('truncated', 'truncated'),
    ('text', 'not a readable image'),
    ('empty', 'empty file'),
])
def test_unreadable_files_raise_an_error_naming_the_file(odd_images, kind, problem):
    paths, _ = odd_images
    with pytest.raises(facenet.ImageReadError) as error:
        facenet.read_image(str(paths[kind]))
    assert str(paths[kind]) in str(error.value)
    assert problem in str(error.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(facenet.ImageReadError, match='no such file'):
        facenet.read_image(str(tmp_path / 'nope.jpg'))


def test_odd_formats_load_as_rgb_uint8(odd_images):
    paths, rgb = odd_images
    assert np.array_equal(facenet.read_image(str(paths['good'])), rgb)
    assert np.array_equal(facenet.read_image(str(paths['rgba'])), rgb)  # alpha dropped, colours kept
    gray = facenet.read_image(str(paths['gray']))
    assert gray.shape == (40, 50, 3) and gray.dtype == np.uint8
    assert np.array_equal(gray[:, :, 1], rgb[:, :, 0]) and np.array_equal(gray[:, :, 2], rgb[:, :, 0])
    gray16 = facenet.read_image(str(paths['gray16']))
    expected = np.round((np.arange(40 * 50).reshape(40, 50) * 32) * 255.0 / 65535).astype(np.uint8)
    assert gray16.shape == (40, 50, 3)
    assert np.array_equal(gray16[:, :, 0], expected)
    assert gray16.max() == expected.max() > 200  # the 16-bit range is scaled, not clipped or wrapped


def test_read_image_matches_pillow_on_real_lfw_jpeg(lfw_dir):
    path = lfw_dir / 'Aaron_Peirsol' / 'Aaron_Peirsol_0001.jpg'
    image = facenet.read_image(str(path))
    assert image.shape == (250, 250, 3) and image.dtype == np.uint8
    assert np.array_equal(image, np.asarray(Image.open(path).convert('RGB')))


def test_prewhiten_equals_per_image_standardization(lfw_dir):
    image = facenet.read_image(str(lfw_dir / 'Aaron_Peirsol' / 'Aaron_Peirsol_0003.jpg'))
    expected = tf.image.per_image_standardization(image).numpy()
    assert np.abs(facenet.prewhiten(image) - expected).max() < 1e-5
    flat = np.full((8, 8, 3), 9, np.uint8)  # zero variance: the 1/sqrt(N) floor avoids dividing by 0
    assert np.abs(facenet.prewhiten(flat) - tf.image.per_image_standardization(flat).numpy()).max() < 1e-6


def test_fixed_standardization():
    x = np.array([0, 127.5, 255])
    assert np.allclose(facenet.fixed_image_standardization(x), [-127.5 / 128, 0, 127.5 / 128])


def test_crop_central_and_random():
    image = np.arange(182 * 182 * 3).reshape(182, 182, 3)
    assert np.array_equal(facenet.crop(image, False, 160), image[11:171, 11:171])
    np.random.seed(0)
    offsets = set()
    for _ in range(50):
        crop = facenet.crop(image, True, 160)
        assert crop.shape == (160, 160, 3)
        top, left = divmod(int(crop[0, 0, 0]) // 3, 182)
        assert 0 <= top <= 22 and 0 <= left <= 22
        offsets.add((top, left))
    assert len(offsets) > 10
    small = np.zeros((100, 100, 3))
    assert facenet.crop(small, False, 160) is small


def test_crop_uses_each_axis_for_non_square_images():
    image = np.zeros((200, 300, 3))
    image[20:180, 70:230] = 1  # the central 160x160
    assert facenet.crop(image, False, 160).min() == 1


def test_flip_and_to_rgb():
    image = np.arange(12).reshape(2, 2, 3)
    assert np.array_equal(facenet.flip(image, False), image)
    np.random.seed(1)
    flips = [np.array_equal(facenet.flip(image, True), image[:, ::-1]) for _ in range(40)]
    assert 5 < sum(flips) < 35
    gray = np.array([[1, 2], [3, 4]], np.uint8)
    assert facenet.to_rgb(gray).shape == (2, 2, 3) and facenet.to_rgb(gray)[1, 0, 2] == 3


def test_load_data_prewhitens_then_crops(tmp_path):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (170, 170, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / 'a.png')
    data = facenet.load_data([str(tmp_path / 'a.png')], False, False, 160)
    assert data.shape == (1, 160, 160, 3)
    assert np.allclose(data[0], facenet.prewhiten(image)[5:165, 5:165])
    raw = facenet.load_data([str(tmp_path / 'a.png')], False, False, 160, do_prewhiten=False)
    assert np.array_equal(raw[0], image[5:165, 5:165])


def test_load_data_names_a_bad_file(odd_images):
    paths, _ = odd_images
    with pytest.raises(facenet.ImageReadError, match='text.jpg'):
        facenet.load_data([str(paths['good']), str(paths['text'])], False, False, 40)
    with pytest.raises(facenet.ImageReadError, match='smaller than image_size'):
        facenet.load_data([str(paths['good'])], False, False, 160)


def test_put_images_on_grid():
    images = np.ones((5, 4, 4, 3))
    grid = facenet.put_images_on_grid(images, shape=(3, 2))
    assert grid.shape == (2 * 7 + 3, 3 * 7 + 3, 3)
    assert grid.sum() == 5 * 4 * 4 * 3
    assert grid[3:7, 3:7].min() == 1 and grid[10:14, 17:21].max() == 0  # sixth cell empty
