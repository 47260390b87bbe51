"""facenet_tf2.training.triplets: the original's sampling and triplet selection (exact, against a
transcription of its loops and the shared reference of the original code), triplet_loss, the online
strategies against direct formulas, and the P x K sampler."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from facenet_tf2.dataset import ImageClass
from facenet_tf2.pipeline import RANDOM_CROP, UnreadableImages
from facenet_tf2.training import triplets
from images_fixtures import make_rgb

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_benchmark_module(name):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / 'benchmarks' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


original = load_benchmark_module('original_triplet_selection')
checker = load_benchmark_module('check_triplet_selection')

# Unequal classes, an empty and a single-image one, and images after the anchor classes that only
# serve as negatives (the original's people_per_batch cut).
CLASS_SIZES = [5, 1, 7, 3, 0, 2, 6, 4]
PEOPLE_PER_BATCH = 7
NROF_EXTRA = 3


def clustered_embeddings(seed, dim=16, spread=1.0):
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.repeat(np.arange(len(CLASS_SIZES)), CLASS_SIZES), 20 + np.arange(NROF_EXTRA)])
    centres = rng.standard_normal((30, dim))
    emb = centres[labels] + spread * rng.standard_normal((len(labels), dim))
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def candidate_lists(found):
    return [found.flat[found.offsets[k]:found.offsets[k + 1]].tolist() for k in range(len(found.pairs))]


@pytest.mark.parametrize('alpha', [0.05, 0.2, 0.5, 1.0])
@pytest.mark.parametrize('dim, spread', [(16, 1.0), (128, 1.6)])
def test_selection_equals_the_original_loops(alpha, dim, spread):
    emb = clustered_embeddings(dim, dim, spread)
    paths = [f'img{i}.png' for i in range(len(emb))]
    pairs, pos, candidates, _ = original.original_candidates(emb, CLASS_SIZES, PEOPLE_PER_BATCH, alpha)
    found = triplets.triplet_candidates(emb, CLASS_SIZES, alpha, PEOPLE_PER_BATCH)
    assert np.array_equal(found.pairs, pairs)
    assert np.array_equal(found.pos_dist_sqr, pos)  # bit for bit
    assert candidate_lists(found) == [c.tolist() for c in candidates]
    assert 0 < len(found.flat) < len(pairs) * len(emb)  # partial candidate sets: the test can fail
    for make_rng in (np.random.RandomState, np.random.default_rng):
        expected = original.original_select_triplets(emb, CLASS_SIZES, paths, PEOPLE_PER_BATCH, alpha, make_rng(3))
        rng = make_rng(3)
        assert triplets.select_triplets(emb, CLASS_SIZES, paths, PEOPLE_PER_BATCH, alpha, rng) == expected
    # The generator is left where the original leaves it, so later draws agree too.
    rng_ours, rng_original = np.random.RandomState(9), np.random.RandomState(9)
    triplets.select_triplets(emb, CLASS_SIZES, paths, PEOPLE_PER_BATCH, alpha, rng_ours)
    original.original_select_triplets(emb, CLASS_SIZES, paths, PEOPLE_PER_BATCH, alpha, rng_original)
    assert rng_ours.randint(1 << 30) == rng_original.randint(1 << 30)


def test_selection_uses_numpys_global_state_by_default():
    emb = clustered_embeddings(1)
    paths = list(range(len(emb)))
    np.random.seed(5)
    ours = triplets.select_triplets(emb, CLASS_SIZES, paths, PEOPLE_PER_BATCH, 0.5)
    expected = original.original_select_triplets(emb, CLASS_SIZES, paths, PEOPLE_PER_BATCH, 0.5,
                                                 np.random.RandomState(5))
    assert ours == expected


@pytest.mark.parametrize('step', [0, 1])
def test_a_negative_exactly_at_the_margin_is_decided_as_the_original(step):
    """alpha set to d_an^2 - d_ap^2 as the original computes it (excluded: `<` is strict) and one ulp
    above (included): the product-form distances must not decide these by their rounding."""
    emb = clustered_embeddings(2, dim=128, spread=0.9)
    anchor, positive, negative = 0, 3, 12
    neg_dists_sqr = np.sum(np.square(emb[anchor] - emb), 1)
    margin = neg_dists_sqr[negative] - np.sum(np.square(emb[anchor] - emb[positive]))
    alpha = np.nextafter(margin, np.inf) if step else margin
    found = triplets.triplet_candidates(emb, CLASS_SIZES, alpha, PEOPLE_PER_BATCH)
    _, _, candidates, _ = original.original_candidates(emb, CLASS_SIZES, PEOPLE_PER_BATCH, alpha)
    assert candidate_lists(found) == [c.tolist() for c in candidates]
    pair = [tuple(p) for p in found.pairs.tolist()].index((anchor, positive))
    assert (negative in candidate_lists(found)[pair]) == bool(step)


def test_float32_embeddings_are_selected_in_float64_as_train_does():
    emb32 = clustered_embeddings(4).astype(np.float32)
    found = triplets.triplet_candidates(emb32, CLASS_SIZES, 0.3, PEOPLE_PER_BATCH)
    _, pos, candidates, _ = original.original_candidates(emb32.astype(np.float64), CLASS_SIZES, PEOPLE_PER_BATCH, 0.3)
    assert np.array_equal(found.pos_dist_sqr, pos)
    assert candidate_lists(found) == [c.tolist() for c in candidates]


def test_nan_embeddings_are_never_chosen_as_in_the_original():
    """An image without an embedding (NaN) forms no pair and is no candidate; the rest is unchanged."""
    emb = clustered_embeddings(7)
    emb[[2, 8, len(emb) - 1]] = np.nan
    for alpha in (0.2, 1.0):
        found = triplets.triplet_candidates(emb, CLASS_SIZES, alpha, PEOPLE_PER_BATCH)
        _, _, candidates, _ = original.original_candidates(emb, CLASS_SIZES, PEOPLE_PER_BATCH, alpha)
        assert candidate_lists(found) == [c.tolist() for c in candidates]
        chosen, _ = triplets.select_triplet_indices(emb, CLASS_SIZES, PEOPLE_PER_BATCH, alpha, np.random.RandomState(0))
        assert len(chosen) and not set(chosen.ravel().tolist()) & {2, 8, len(emb) - 1}


def test_no_pairs_and_no_candidates():
    emb = clustered_embeddings(5)
    found = triplets.triplet_candidates(emb, [1, 1, 0], 0.2)
    assert found.pairs.shape == (0, 2) and found.offsets.tolist() == [0] and found.flat.size == 0
    assert triplets.select_triplets(emb, [1, 1, 0], list(range(len(emb))), 3, 0.2) == ([], 0, 0)
    nrof = sum(CLASS_SIZES)
    chosen, nrof_pairs = triplets.select_triplet_indices(emb, CLASS_SIZES, PEOPLE_PER_BATCH, -10.0,
                                                         np.random.RandomState(0))
    assert chosen.shape == (0, 3) and nrof_pairs == 10 + 21 + 3 + 1 + 15 and nrof < len(emb)
    with pytest.raises(ValueError, match='embeddings'):
        triplets.triplet_candidates(emb[:5], CLASS_SIZES, 0.2)


def fake_dataset(sizes):
    return [ImageClass(f'person{c}', [f'person{c}/img{i}.png' for i in range(n)]) for c, n in enumerate(sizes)]


@pytest.mark.parametrize('make_rng', [np.random.RandomState, np.random.default_rng])
def test_sample_people_draws_as_the_original(make_rng):
    dataset = fake_dataset([3, 50, 0, 12, 41, 1, 7, 40, 2, 30])
    for people, images in [(4, 10), (3, 40), (5, 7)]:
        expected = original.original_sample_people(dataset, people, images, make_rng(11))
        rng = make_rng(11)
        assert triplets.sample_people(dataset, people, images, rng) == expected
        assert sum(expected[1]) == people * images


def test_sample_people_stops_short_where_the_original_ran_out_of_classes():
    dataset = fake_dataset([3, 2, 4])
    with pytest.raises(IndexError):
        original.original_sample_people(dataset, 5, 3, np.random.RandomState(0))
    paths, per_class = triplets.sample_people(dataset, 5, 3, np.random.RandomState(0))
    assert sorted(per_class) == [2, 3, 3] and len(paths) == 8 and len(set(paths)) == 8


def reference_json(reference_dir):
    path = reference_dir / 'train_tripletloss' / 'reference.json'
    if not path.exists():
        pytest.skip(f'triplet selection reference not found at {path}')
    return path


def test_the_shared_reference_of_the_original_passes(reference_dir):
    ok, results = checker.check_reference(reference_json(reference_dir))
    assert ok, '\n'.join(line for line_ok, line in results if not line_ok)
    lines = '\n'.join(line for _, line in results)
    assert 'candidate sets (alpha 0.2): 60 of 60 pairs identical (8 candidates recorded, 8 found)' in lines
    assert 'alpha1/candidate sets (alpha 1): 60 of 60 pairs identical (434 candidates recorded, 434 found)' in lines
    assert len(results) >= 40


def test_triplet_loss_equals_the_originals_on_the_reference(reference_dir):
    reference = np.load(reference_json(reference_dir).with_suffix('.npz'))
    emb = reference['embeddings']
    for prefix, key, alpha in [('', 'triplet_loss', 0.2), ('alpha1/', 'alpha1/triplet_loss', 1.0),
                               ('hardest/', 'hardest/triplet_loss_alpha0.2', 0.2),
                               ('hardest/', 'hardest/triplet_loss_alpha1', 1.0)]:
        chosen = reference[prefix + 'triplets']
        loss = triplets.triplet_loss(emb[chosen[:, 0]], emb[chosen[:, 1]], emb[chosen[:, 2]], alpha)
        assert abs(float(loss) - float(reference[key])) <= 1e-6, key


def float32_loss(anchor, positive, negative, alpha):
    """facenet.triplet_loss written out in NumPy float32, to make references without the checker's code."""
    basic = np.sum(np.square(anchor - positive), 1) - np.sum(np.square(anchor - negative), 1) + np.float32(alpha)
    return np.mean(np.maximum(basic, np.float32(0.0)), dtype=np.float32)


def test_the_checker_on_another_reference_and_on_corrupted_ones(tmp_path):
    sizes = [4, 2, 6, 3, 5]
    emb = clustered_embeddings(6, dim=32, spread=0.7)[:sum(sizes) + 2].astype(np.float32)
    json_path = tmp_path / 'other.json'
    meta, arrays = original.write_reference(str(json_path), emb, sizes, 5, 0.35, extra_alphas=(0.8,),
                                            loss_fn=float32_loss)
    assert 0 < meta['total_candidates'] < meta['extras']['alpha0.8']['total_candidates']
    ok, results = checker.check_reference(json_path)
    assert ok, '\n'.join(line for line_ok, line in results if not line_ok)
    text = '\n'.join(line for _, line in results)
    assert 'alpha0.8/candidate sets (alpha 0.8)' in text and 'hardest/triplet_loss_alpha0.35' in text
    assert checker.main([str(json_path)]) == 0

    def corrupted(name, change):
        changed = dict(arrays)
        changed[name] = change(arrays[name].copy())
        folder = tmp_path / name.replace('/', '_')
        folder.mkdir()
        np.savez(folder / 'other.npz', **changed)
        (folder / 'other.json').write_text(json.dumps(meta))
        return folder / 'other.json'

    def drop_first_candidate(flat):
        return flat[1:]

    def shift_candidate(flat):
        flat[0] += 1
        return flat

    for name, change in [('cand_flat', shift_candidate), ('alpha0.8/cand_flat', shift_candidate),
                         ('alpha0.8/cand_offsets', lambda offsets: np.maximum(offsets - 1, 0)),
                         ('triplet_loss', lambda loss: loss + np.float32(1e-5)),
                         ('hardest/triplet_loss_alpha0.8', lambda loss: loss * np.float32(1.001)),
                         ('hardest/triplets', lambda rows: rows[::-1].copy())]:
        path = corrupted(name, change)
        ok, _ = checker.check_reference(path)
        assert not ok, name
        assert checker.main([str(path)]) == 1
    meta_changed = dict(meta, total_candidates=meta['total_candidates'] + 1)
    path = corrupted('cand_offsets', lambda offsets: offsets)
    path.write_text(json.dumps(meta_changed))
    assert not checker.check_reference(path)[0]


def test_the_checker_refuses_an_unreadable_reference(tmp_path, capsys):
    (tmp_path / 'lonely.json').write_text('{"alpha": 0.2}')
    assert checker.main([str(tmp_path / 'lonely.json')]) == 2
    assert 'no NPZ' in capsys.readouterr().err


# Online strategies against direct formulas, written as loops over the batch.

def squared_distances(emb):
    return np.array([[float(np.sum((a - b) ** 2)) for b in emb] for a in emb])


def direct_batch_hard(emb, labels, alpha):
    d = squared_distances(emb)
    losses = []
    for a in range(len(emb)):
        pos = [d[a, p] for p in range(len(emb)) if p != a and labels[p] == labels[a]]
        neg = [d[a, n] for n in range(len(emb)) if labels[n] != labels[a]]
        if pos and neg:
            losses.append(max(max(pos) - min(neg) + alpha, 0.0))
    return losses


def direct_batch_semihard(emb, labels, alpha):
    d = squared_distances(emb)
    losses, semihard = [], 0
    for a in range(len(emb)):
        neg = [d[a, n] for n in range(len(emb)) if labels[n] != labels[a]]
        for p in range(len(emb)):
            if p == a or labels[p] != labels[a] or not neg:
                continue
            farther = [x for x in neg if x > d[a, p]]
            semihard += bool(farther)
            losses.append(max(d[a, p] - (min(farther) if farther else max(neg)) + alpha, 0.0))
    return losses, semihard


def direct_batch_all(emb, labels, alpha):
    d = squared_distances(emb)
    return [max(d[a, p] - d[a, n] + alpha, 0.0) for a in range(len(emb)) for p in range(len(emb))
            for n in range(len(emb)) if p != a and labels[p] == labels[a] and labels[n] != labels[a]]


# Hand-made: a tight pair, a loose pair that overlaps class 2, a singleton (no positive), a far class.
POINTS = np.array([[0.0, 0.0], [0.3, 0.0], [1.0, 1.0], [2.0, 1.05], [1.2, 0.9], [1.9, 1.35], [0.1, 0.4],
                   [5.0, 5.0], [5.2, 5.1]], np.float32)
LABELS = np.array([0, 0, 1, 1, 2, 2, 3, 4, 4])
CASES = {'hand-made': (POINTS, LABELS),
         'no positive (all distinct)': (POINTS, np.arange(9)),
         'no negative (one class)': (POINTS, np.zeros(9, int)),
         'identical embeddings': (np.ones((6, 3), np.float32), np.array([0, 0, 1, 1, 2, 2])),
         'random P x K': (np.random.default_rng(0).standard_normal((12, 5)).astype(np.float32),
                          np.repeat(np.arange(4), 3))}


def expected_metrics(losses, denominator_active):
    losses = np.asarray(losses, np.float64)
    active = int((losses > 0).sum())
    denominator = active if denominator_active else len(losses)
    loss = losses.sum() / denominator if denominator else 0.0
    return loss, len(losses), active, active / len(losses) if len(losses) else 0.0


@pytest.mark.parametrize('case', list(CASES))
@pytest.mark.parametrize('alpha', [0.2, 1.0])
def test_online_strategies_equal_direct_formulas(case, alpha):
    emb, labels = CASES[case]
    semihard_losses, nrof_semihard = direct_batch_semihard(emb, labels, alpha)
    expected = {'batch_hard': expected_metrics(direct_batch_hard(emb, labels, alpha), False),
                'batch_semihard': expected_metrics(semihard_losses, False),
                'batch_all': expected_metrics(direct_batch_all(emb, labels, alpha), True)}
    for name, strategy in triplets.ONLINE_STRATEGIES.items():
        loss, metrics = tf.function(strategy)(tf.constant(emb), tf.constant(labels), alpha)
        exp_loss, exp_nrof, exp_active, exp_fraction = expected[name]
        assert float(loss) == pytest.approx(exp_loss, rel=1e-5, abs=1e-5), name
        assert int(metrics['nrof_triplets']) == exp_nrof, name
        assert int(metrics['nrof_active']) == exp_active, name
        assert float(metrics['fraction_active']) == pytest.approx(exp_fraction, abs=1e-6), name
        if name == 'batch_semihard':
            assert float(metrics['fraction_semihard']) == pytest.approx(
                nrof_semihard / exp_nrof if exp_nrof else 0.0, abs=1e-6)
    if case == 'hand-made':
        assert expected['batch_hard'][1] == 8 and 0 < expected['batch_all'][2] < expected['batch_all'][1]


@pytest.mark.parametrize('case', list(CASES))
def test_online_gradients_are_finite_and_zero_without_triplets(case):
    emb, labels = CASES[case]
    for name, strategy in triplets.ONLINE_STRATEGIES.items():
        variable = tf.Variable(emb)
        with tf.GradientTape() as tape:
            loss, metrics = strategy(variable, tf.constant(labels), 0.2)
        gradient = tape.gradient(loss, variable)
        assert gradient is not None and np.all(np.isfinite(gradient.numpy())), name
        if int(metrics['nrof_triplets']) == 0:
            assert float(loss) == 0.0 and not np.any(gradient.numpy()), name


def test_online_strategy_traces_once_for_batches_of_one_shape():
    traces = []

    @tf.function
    def step(emb, labels):
        traces.append(1)
        return triplets.batch_hard(emb, labels, 0.2)

    rng = np.random.default_rng(1)
    for labels in (np.repeat(np.arange(4), 3), np.arange(12), np.zeros(12, int)):
        step(tf.constant(rng.standard_normal((12, 5)).astype(np.float32)), tf.constant(labels))
    assert len(traces) == 1


def test_pk_batches_are_p_by_k_repeatable_and_resumable():
    dataset = fake_dataset([5, 1, 3, 8, 2, 0, 6, 4])
    batches = [(paths.numpy(), labels.numpy()) for paths, labels in
               pk_take(triplets.pk_batches(dataset, 3, 4, seed=7), 5)]
    for paths, labels in batches:
        assert len(paths) == 12
        blocks = labels.reshape(3, 4)
        assert np.all(blocks == blocks[:, :1]) and len(set(blocks[:, 0])) == 3
        assert not set(blocks[:, 0]) & {1, 5}  # classes without a positive are never drawn
        for block_paths, label in zip(paths.reshape(3, 4), blocks[:, 0]):
            names = {p.decode() for p in block_paths}
            assert names <= set(dataset[label].image_paths)
            assert len(names) == min(4, len(dataset[label].image_paths))  # repeats only where too few
    again = list(pk_take(triplets.pk_batches(dataset, 3, 4, seed=7), 5))
    resumed = list(pk_take(triplets.pk_batches(dataset, 3, 4, seed=7, start=3), 2))
    assert all(np.array_equal(a[0], b[0].numpy()) for a, b in zip(batches, again))
    assert all(np.array_equal(a[0], b[0].numpy()) for a, b in zip(batches[3:], resumed))
    other = next(iter(triplets.pk_batches(dataset, 3, 4, seed=8)))
    assert not np.array_equal(batches[0][0], other[0].numpy())
    with pytest.raises(ValueError, match='6 classes with two or more images'):
        triplets.pk_batches(dataset, 7, 2, seed=0)


def pk_take(dataset, count):
    return list(dataset.take(count))


def test_pk_image_batches_decode_augment_and_skip_unreadable_files(tmp_path):
    dataset = []
    for c in range(3):
        folder = tmp_path / f'person{c}'
        folder.mkdir()
        paths = []
        for i in range(2):
            path = folder / f'img{i}.png'
            Image.fromarray(make_rgb(40, 40, seed=10 * c + i)).save(path)
            paths.append(str(path))
        dataset.append(ImageClass(f'person{c}', paths))
    (tmp_path / 'person2' / 'img1.png').write_text('not an image')
    unreadable = UnreadableImages()
    batches = list(triplets.pk_image_batches(dataset, 3, 2, 32, RANDOM_CROP, seed=3,
                                             unreadable=unreadable).take(2))
    for images, labels in batches:
        assert images.shape[1:] == (32, 32, 3) and images.shape[0] == len(labels)
        assert sorted(set(labels.numpy().tolist())) == [0, 1, 2]
        assert np.allclose(np.mean(images.numpy(), axis=(1, 2, 3)), 0.0, atol=1e-4)  # prewhitened
    assert len(batches[0][1]) < 6 and len(unreadable) >= 1  # the bad file was dropped, the rest kept
    first = next(iter(triplets.pk_image_batches(dataset, 3, 2, 32, RANDOM_CROP, seed=3,
                                                unreadable=UnreadableImages())))
    assert np.array_equal(first[0].numpy(), batches[0][0].numpy())  # seeded crops: repeatable

