"""compare.py: MTCNN alignment, embeddings and the distance matrix, against the original's numbers."""
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facenet_tf2.commands import compare
import reference_faces
from facenet_tf2.images import prewhiten

SAMPLE = reference_faces.SAMPLE[:4]


def parse_matrix(text):
    rows = text.split('Distance matrix\n', 1)[1].strip().splitlines()[1:]
    return np.array([[float(value) for value in row.split()[1:]] for row in rows])


@pytest.fixture(scope='module')
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('bad')
    (folder / 'truncated.jpg').write_bytes(b'\xff\xd8\xff\xe0 not really a jpeg')
    Image.fromarray(np.full((120, 100, 3), 128, np.uint8)).save(folder / 'blank.png')
    return [str(folder / 'truncated.jpg'), str(folder / 'blank.png')]


def test_compare_prints_the_originals_distances(frozen_model_pb, lfw_dir, reference_dir, bad_files, capsys):
    """With the align script's margin (32) the crops are the reference crops, so the printed
    distances are those between the original's embeddings. A truncated file and an image without
    a face are reported and left out, as the original left out faceless images."""
    image_files = [str(lfw_dir / (name + '.jpg')) for name in SAMPLE[:2]] + bad_files + \
        [str(lfw_dir / (name + '.jpg')) for name in SAMPLE[2:]]
    compare.main(compare.parse_arguments([str(frozen_model_pb), *image_files, '--margin', '32']))
    out = capsys.readouterr().out
    assert "can't read image, remove " + bad_files[0] in out
    assert "can't detect face, remove  " + bad_files[1] in out
    listed = re.findall(r'^(\d+): (.*)$', out, flags=re.MULTILINE)
    assert [path for _, path in listed] == [str(lfw_dir / (name + '.jpg')) for name in SAMPLE]

    kept, _, _ = reference_faces.aligned_reference_crops(lfw_dir, reference_dir, SAMPLE)
    assert kept == SAMPLE, 'the aligner did not reproduce the original crops of the sample'
    emb = reference_faces.reference_embeddings(reference_dir, SAMPLE)
    expected = np.sqrt(np.sum(np.square(emb[:, np.newaxis] - emb[np.newaxis]), axis=2))
    np.testing.assert_allclose(parse_matrix(out), expected, atol=6e-5, rtol=0)   # printed with 4 decimals
    assert parse_matrix(out)[0, 1] < 1.0 < parse_matrix(out)[0, 2]   # same person close, another far


def test_fixed_standardization(lfw_dir):
    image_files = [str(lfw_dir / (name + '.jpg')) for name in SAMPLE[:2]]
    fixed = compare.load_and_align_data(list(image_files), 160, 44, 1.0, standardization='fixed')
    prewhitened = compare.load_and_align_data(list(image_files), 160, 44, 1.0)
    crops = fixed * 128.0 + 127.5
    np.testing.assert_allclose(crops, np.round(crops), atol=1e-4)
    assert crops.min() >= 0 and crops.max() <= 255
    np.testing.assert_allclose(np.stack([prewhiten(np.round(c)) for c in crops]), prewhitened, atol=1e-5)


def test_no_face_at_all_is_a_clear_error(bad_files):
    with pytest.raises(ValueError, match='no face found in any of the images'):
        compare.load_and_align_data(list(bad_files), 160, 44, 1.0)


def test_an_image_given_twice_keeps_its_rows(bad_files):
    """The faces follow the listed files even when one is listed twice and another is left out
    (a dict of paths merged the two, so the printed rows were mislabelled)."""
    images = sorted(str(path) for path in (Path(__file__).resolve().parents[1] / 'data' / 'images').glob('*.jpg'))
    files = [images[0], bad_files[1], images[2], images[0]]
    faces = compare.load_and_align_data(files, 160, 44, 1.0)
    assert files == [images[0], images[2], images[0]] and faces.shape == (3, 160, 160, 3)
    assert np.array_equal(faces[0], faces[2]) and not np.array_equal(faces[0], faces[1])
