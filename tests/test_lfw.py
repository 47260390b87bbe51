"""lfw: reading, resolving and writing pairs files."""
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import facenet
import lfw
from facenet_tf2.evaluation import metrics
from facenet_tf2.files import atomic_path


def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', (4, 4)).save(path)
    return path


def test_read_pairs_of_lfw(lfw_pairs):
    pairs = lfw.read_pairs(lfw_pairs)
    assert pairs.shape == (6000,) and pairs.dtype == object
    assert list(pairs[0]) == ['Abel_Pacheco', '1', '4']
    assert list(pairs[300]) == ['Abdel_Madi_Shabneh', '1', 'Dean_Barker', '1']
    assert lfw.read_pairs_header(lfw_pairs) == (10, 300)


def test_get_paths_of_lfw_match_the_reference_order(lfw_dir, lfw_pairs, reference_dir):
    paths, issame = lfw.get_paths(str(lfw_dir), lfw.read_pairs(lfw_pairs))
    reference = np.load(reference_dir / 'original_embeddings_20170512-110547_lfw.npz')
    relative = [p[len(str(lfw_dir)) + 1:] for p in paths]
    assert [p.rsplit('.', 1)[0] for p in relative] == [p.rsplit('.', 1)[0] for p in reference['paths']]
    assert all(p.endswith('.jpg') for p in relative)
    np.testing.assert_array_equal(issame, reference['issame'])


def test_read_pairs_names_a_bad_line(tmp_path, caplog):
    pairs_file = tmp_path / 'pairs.txt'
    pairs_file.write_text('1 1\nA 1 2\nB 1\n')
    with pytest.raises(ValueError, match=r'pairs.txt:3: expected'):
        lfw.read_pairs(pairs_file)
    # Three or four fields are not enough: the images must be numbers or image file names.
    pairs_file.write_text('1 1\nA 1 2\nsome garbage text\n')
    with pytest.raises(ValueError, match=r"pairs.txt:3: expected .* got 'some garbage text'; fix or remove the line"):
        lfw.read_pairs(pairs_file)
    pairs_file.write_text('1 1\nA portrait.png 2\nA 1 B img.JPG\n')
    assert [list(pair) for pair in lfw.read_pairs(pairs_file)] == [['A', 'portrait.png', '2'], ['A', '1', 'B', 'img.JPG']]
    pairs_file.write_text('A 1 2\nA 1 2\n\n')  # no header: the first line is skipped, as in the original
    assert lfw.read_pairs_header(pairs_file) is None
    with caplog.at_level(logging.WARNING):
        assert len(lfw.read_pairs(pairs_file)) == 1
    assert "the first line 'A 1 2' looks like a pair" in caplog.text


def test_get_paths_resolves_numbers_and_file_names(tmp_path):
    jpg = _image(tmp_path / 'A' / 'A_0001.jpg')
    _image(tmp_path / 'A' / 'A_0001.png')  # .jpg wins, as in the original
    png = _image(tmp_path / 'A' / 'A_0002.png')
    named = _image(tmp_path / 'B' / 'portrait.png')
    numbered = _image(tmp_path / 'B' / '7.jpg')
    # A file name written for the unaligned .jpg finds the aligner's .png.
    pairs = [['A', '1', '2'], ['A', '1', 'B', 'portrait'], ['B', 'portrait.jpg', '7.jpg']]
    paths, issame = lfw.get_paths(str(tmp_path), pairs)
    assert paths == [str(jpg), str(png), str(jpg), str(named), str(named), str(numbered)]
    assert issame == [True, False, True]


def test_missing_image_is_an_error_or_a_counted_skip(tmp_path):
    _image(tmp_path / 'A' / 'A_0001.jpg')
    _image(tmp_path / 'A' / 'A_0002.jpg')
    pairs = [['A', '1', '2'], ['A', '1', 'C', '3']]
    with pytest.raises(FileNotFoundError, match=r'C_0003: no image file .* \(pair A 1 C 3\)'):
        lfw.get_paths(str(tmp_path), pairs)
    skipped = []
    paths, issame = lfw.get_paths(str(tmp_path), pairs, skipped=skipped)
    assert len(paths) == 2 and issame == [True]
    assert len(skipped) == 1 and skipped[0][0] == ['A', '1', 'C', '3'] and 'C_0003' in skipped[0][1]


def test_facenet_exports_the_original_metric_names():
    for name in ('distance', 'calculate_roc', 'calculate_accuracy', 'calculate_val', 'calculate_val_far'):
        assert getattr(facenet, name) is getattr(metrics, name)


def test_pairs_file_written_atomically(tmp_path):
    target = tmp_path / 'sub' / 'pairs.txt'
    lfw.write_pairs(target, [[['A', '1', '2'], ['A', '1', 'B', '1']]], 1)
    assert target.read_text() == '1\t1\nA\t1\t2\nA\t1\tB\t1\n'
    assert (target.stat().st_mode & 0o777) == 0o666 & ~_umask()
    with pytest.raises(ZeroDivisionError):
        with atomic_path(target) as temporary:
            Path(temporary).write_text('half')
            raise ZeroDivisionError
    assert target.read_text().startswith('1\t1\n') and [p.name for p in target.parent.iterdir()] == ['pairs.txt']


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
