"""generate_pairs.py and lfw.generate_pairs: LFW-format pairs for any folder-per-identity dataset."""
import itertools

import pytest

from facenet_tf2.commands import generate_pairs
import lfw
from facenet_tf2.dataset import get_dataset


def _dataset(root, sizes, lfw_named=True):
    """Identity folders with the given image counts (empty files: only the names matter here)."""
    for index, size in enumerate(sizes):
        name = f'Person_{index:02d}'
        (root / name).mkdir(parents=True)
        for image in range(size):
            filename = f'{name}_{image + 1:04d}.png' if lfw_named else f'IMG {image}.jpg'.replace(' ', '_')
            (root / name / filename).touch()
    return root


def _folds(pairs_file):
    nrof_folds, nrof_pairs = lfw.read_pairs_header(pairs_file)
    pairs = [list(pair) for pair in lfw.read_pairs(pairs_file)]
    assert len(pairs) == 2 * nrof_folds * nrof_pairs
    return [pairs[i * 2 * nrof_pairs:(i + 1) * 2 * nrof_pairs] for i in range(nrof_folds)], nrof_pairs


@pytest.mark.parametrize('lfw_named', [True, False])
def test_pairs_file_layout_and_round_trip(tmp_path, lfw_named):
    # Many small identities, as in LFW: most have one or two images.
    sizes = [1, 2, 1, 3, 2, 1, 6, 2, 1, 4, 1, 2, 2, 1, 5, 1, 2, 3, 1, 2] * 2
    data_dir = _dataset(tmp_path / 'data', sizes, lfw_named)
    pairs_file = tmp_path / 'pairs.txt'
    generate_pairs.main(generate_pairs.parse_arguments([str(data_dir), str(pairs_file), '--nrof_folds', '4',
                                                        '--nrof_pairs', '5', '--seed', '3']))
    folds, nrof_pairs = _folds(pairs_file)
    assert len(folds) == 4 and nrof_pairs == 5
    fold_identities = []
    for fold in folds:
        assert all(len(pair) == 3 for pair in fold[:5]) and all(len(pair) == 4 for pair in fold[5:])
        assert all(pair[1] != pair[2] for pair in fold[:5]) and all(pair[0] != pair[2] for pair in fold[5:])
        fold_identities.append({pair[0] for pair in fold} | {pair[2] for pair in fold[5:]})
    for first, second in itertools.combinations(fold_identities, 2):
        assert not first & second

    paths, issame = lfw.get_paths(str(data_dir), lfw.read_pairs(pairs_file))
    assert issame == ([True] * 5 + [False] * 5) * 4
    assert len(set(zip(paths[0::2], paths[1::2]))) == 20 * 2  # no pair twice
    names = [pair[0] for fold in folds for pair in fold[:5]]
    # Same-identity pairs are spread over identities (round robin), not drawn from the largest one.
    assert max(names.count(name) for name in names) <= 2
    image_fields = [field for fold in folds for pair in fold for field in (pair[1:] if len(pair) == 3 else pair[1::2])]
    if lfw_named:
        assert all(field.isdigit() for field in image_fields)
    else:
        assert all(field.startswith('IMG_') and field.endswith('.jpg') for field in image_fields)


def test_same_seed_same_file_other_seed_other_file(tmp_path):
    dataset = get_dataset(str(_dataset(tmp_path, [3] * 30)))
    first = lfw.generate_pairs(dataset, 3, 6, seed=1)
    assert lfw.generate_pairs(dataset, 3, 6, seed=1) == first
    assert lfw.generate_pairs(dataset, 3, 6, seed=2) != first


def test_not_enough_identities_says_what_is_possible(tmp_path):
    # 12 identities with 2 images: 12 same-identity pairs in all, 3 per fold with 4 folds.
    dataset = get_dataset(str(_dataset(tmp_path, [2] * 12 + [1] * 20)))
    with pytest.raises(ValueError, match='With 4 folds at most 3 pairs per fold are possible'):
        lfw.generate_pairs(dataset, 4, 5, seed=0)
    folds = lfw.generate_pairs(dataset, 4, 3, seed=0)
    assert [len(fold) for fold in folds] == [6] * 4


def test_singletons_only_cannot_give_same_identity_pairs(tmp_path):
    data_dir = _dataset(tmp_path / 'data', [1] * 10)
    with pytest.raises(SystemExit, match=r'data: cannot draw 2 folds .* \(0 with two or more images\).*'
                                         r'Not even one pair per fold'):
        generate_pairs.main(generate_pairs.parse_arguments([str(data_dir), str(tmp_path / 'p.txt'),
                                                            '--nrof_folds', '2', '--nrof_pairs', '1']))
    assert not (tmp_path / 'p.txt').exists()


def test_identity_names_with_whitespace_are_left_out(tmp_path):
    data_dir = _dataset(tmp_path, [2] * 4)
    (tmp_path / 'Two Words').mkdir()
    for name in ('a.png', 'b.png'):
        (tmp_path / 'Two Words' / name).touch()
    folds = lfw.generate_pairs(get_dataset(str(data_dir)), 2, 2, seed=0)
    assert all('Two' not in field for fold in folds for pair in fold for field in pair)
