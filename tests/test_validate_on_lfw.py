"""validate_on_lfw.py and the embedding loop behind it.

Most tests use a small stand-in model on synthetic faces, so they run in seconds; the real
20170512-110547 frozen graph embeds one LFW image (Marilyn_Monroe_0001, whose aligned crop the
reference defines exactly) and must give the original pipeline's embedding.
"""
import json

import numpy as np
import tensorflow as tf
from PIL import Image

import facenet
from facenet_tf2.commands import generate_pairs
import lfw
from facenet_tf2.commands import validate_on_lfw
from facenet_tf2.embeddings import embed_images
from facenet_tf2.pipeline import UnreadableImages

IMAGE_SIZE = 16


@tf.function(input_signature=[tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32)])
def _pooled_pixels(images):
    pooled = tf.nn.avg_pool2d(images, 4, 4, 'VALID')
    return tf.math.l2_normalize(tf.reshape(pooled, [tf.shape(images)[0], -1]), axis=1)


class PooledPixels:
    """A stand-in embedding model (the facenet.load_model contract): 4x4-pooled pixels, L2-normalised."""
    embedding_size = 48
    image_size = None

    def __init__(self):
        self.batch_sizes = []

    def __call__(self, images):
        self.batch_sizes.append(int(images.shape[0]))
        return _pooled_pixels(images)


def _faces(root, nrof_identities=24, nrof_images=3, seed=0):
    """Identity folders of noisy variants of one random pattern per identity (LFW file names)."""
    rng = np.random.default_rng(seed)
    for identity in range(nrof_identities):
        name = f'Person_{identity:02d}'
        (root / name).mkdir(parents=True)
        pattern = rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3))
        for image in range(nrof_images):
            pixels = np.clip(pattern + rng.normal(0, 20, pattern.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f'{name}_{image + 1:04d}.png')
    return root


def test_embed_images_any_batch_size_flips_and_unreadable(tmp_path):
    paths = sorted(str(p) for p in _faces(tmp_path, nrof_identities=3).rglob('*.png'))
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'not a png')
    paths.insert(4, str(broken))
    paths += [paths[7], str(broken)]  # listed twice, embedded once
    model, unreadable = PooledPixels(), UnreadableImages()
    embedded = embed_images(model, paths, IMAGE_SIZE, 4, use_flipped_images=True, unreadable=unreadable,
                            progress=False)
    # 10 files, one unreadable: 9 in batches of 4, each batch also embedded mirrored.
    assert model.batch_sizes == [4, 4, 4, 4, 1, 1] and embedded.nrof_embedded == 10
    assert embedded.seconds >= embedded.model_seconds + embedded.input_wait_seconds > 0
    assert embedded.embeddings.shape == (12, 96)
    assert embedded.found.tolist() == [True] * 4 + [False] + [True] * 6 + [False]
    np.testing.assert_array_equal(embedded.embeddings[10], embedded.embeddings[7])
    assert not embedded.embeddings[4].any() and len(unreadable) == 1 and unreadable.failures[0][0] == str(broken)

    image = facenet.prewhiten(facenet.read_image(paths[7])).astype(np.float32)
    expected = model(np.stack([image, image[:, ::-1]])).numpy()
    np.testing.assert_allclose(embedded.embeddings[7], expected.reshape(-1), atol=1e-5)


def test_validate_on_lfw_end_to_end_with_generated_pairs(tmp_path, monkeypatch, capsys):
    data_dir = _faces(tmp_path / 'faces')
    pairs_file = tmp_path / 'pairs.txt'
    generate_pairs.main(generate_pairs.parse_arguments([str(data_dir), str(pairs_file), '--nrof_folds', '3',
                                                        '--nrof_pairs', '8']))
    # One unreadable image: its pairs are left out, the run goes on.
    name, number = lfw.read_pairs(pairs_file)[0][:2]
    broken = data_dir / name / f'{name}_{int(number):04d}.png'
    broken.write_bytes(b'')
    model = PooledPixels()
    monkeypatch.setattr(validate_on_lfw, 'load_model', lambda path, precision='float32': model, raising=False)
    out = tmp_path / 'out'
    args = validate_on_lfw.parse_arguments([
        str(data_dir), 'stand-in-model', '--lfw_pairs', str(pairs_file), '--image_size', str(IMAGE_SIZE),
        '--lfw_batch_size', '7', '--distance_metric', '1', '--use_flipped_images',
        '--roc_plot', str(out / 'roc.png'), '--json', str(out / 'result.json'),
        '--save_embeddings', str(out / 'embeddings.npz')])
    result = validate_on_lfw.main(args)
    printed = capsys.readouterr().out

    assert result.nrof_folds == 3  # from the pairs file header
    nrof_skipped = 48 - result.nrof_pairs
    assert nrof_skipped >= 1
    assert f'Skipped {nrof_skipped} image pairs with unreadable images' in printed
    assert result.accuracy > 0.9  # the stand-in model separates these synthetic identities
    assert f'Accuracy: {result.accuracy:2.5f}+-{result.accuracy_std:2.5f}\n' in printed
    assert f'Validation rate: {result.val:2.5f}+-{result.val_std:2.5f} @ FAR={result.far:2.5f}\n' in printed
    assert f'Area Under Curve (AUC): {result.auc:1.3f}\nEqual Error Rate (EER): {result.eer:1.3f}\n' in printed

    report = json.loads((out / 'result.json').read_text())
    assert report['accuracy'] == result.accuracy and report['nrof_skipped_pairs'] == nrof_skipped
    assert report['unreadable_images'] == [{'path': str(broken), 'problem': 'empty file (0 bytes)'}]
    saved = np.load(out / 'embeddings.npz')
    assert saved['embeddings'].shape == (96, 96) and saved['issame'].shape == (48,)
    broken_rows = saved['paths'] == f'{name}/{broken.name}'
    np.testing.assert_array_equal(~saved['found'], broken_rows)
    assert nrof_skipped == np.sum(broken_rows[0::2] | broken_rows[1::2])
    with Image.open(out / 'roc.png') as plot:
        assert plot.format == 'PNG'


def test_original_flags_and_defaults():
    args = validate_on_lfw.parse_arguments(['aligned', 'model.pb'])
    assert (args.lfw_batch_size, args.image_size, args.lfw_pairs, args.distance_metric) == (100, 160,
                                                                                            'data/pairs.txt', 0)
    assert not (args.use_flipped_images or args.subtract_mean or args.use_fixed_image_standardization)
    assert callable(validate_on_lfw.cli)


def _central_crop(source, target):
    """The reference's fallback crop: box (35, 35, 215, 215) of the 250x250 image, resized to 160."""
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(facenet.read_image(source)).crop((35, 35, 215, 215)).resize((160, 160), Image.BILINEAR).save(target)


def test_validate_on_lfw_with_the_original_frozen_graph(tmp_path, lfw_dir, frozen_model_pb, reference_dir, capsys):
    """A real run on four pairs; Marilyn_Monroe_0001's crop is the reference's own, so its saved
    embedding must be the original pipeline's."""
    pairs = [['Marilyn_Monroe', '1', '2'], ['Marilyn_Monroe', '1', 'Abel_Pacheco', '1'],
             ['Abel_Pacheco', '1', '4'], ['Abel_Pacheco', '4', 'Marilyn_Monroe', '2']]
    for name, number in [('Marilyn_Monroe', 1), ('Marilyn_Monroe', 2), ('Abel_Pacheco', 1), ('Abel_Pacheco', 4)]:
        filename = f'{name}_{number:04d}'
        _central_crop(lfw_dir / name / f'{filename}.jpg', tmp_path / 'aligned' / name / f'{filename}.png')
    pairs_file = tmp_path / 'pairs.txt'
    lfw.write_pairs(pairs_file, [pairs[:2], pairs[2:]], 1)
    validate_on_lfw.main(validate_on_lfw.parse_arguments([
        str(tmp_path / 'aligned'), str(frozen_model_pb), '--lfw_pairs', str(pairs_file), '--lfw_batch_size', '4',
        '--save_embeddings', str(tmp_path / 'embeddings.npz')]))
    assert 'Accuracy: ' in capsys.readouterr().out

    saved = np.load(tmp_path / 'embeddings.npz')
    reference = np.load(reference_dir / 'original_embeddings_20170512-110547_lfw.npz')
    row = list(saved['paths']).index('Marilyn_Monroe/Marilyn_Monroe_0001.png')
    expected = reference['embeddings'][list(reference['paths']).index('Marilyn_Monroe/Marilyn_Monroe_0001.png')]
    np.testing.assert_allclose(saved['embeddings'][row], expected, atol=1e-5, rtol=0)


def test_missing_images_skip_their_pairs_with_one_warning(tmp_path, monkeypatch, capsys):
    """As on LFW, where MTCNN finds no face in Marilyn_Monroe_0001: the pairs of a missing image are
    left out by default, counted and named once; --strict stops instead."""
    data_dir = _faces(tmp_path / 'faces', nrof_identities=12)
    pairs_file = tmp_path / 'pairs.txt'
    generate_pairs.main(generate_pairs.parse_arguments([str(data_dir), str(pairs_file), '--nrof_folds', '2',
                                                        '--nrof_pairs', '6']))
    pairs = lfw.read_pairs(pairs_file)
    name, number = pairs[0][:2]
    (data_dir / name / f'{name}_{int(number):04d}.png').unlink()
    _, _, skipped = validate_on_lfw.find_pair_images(str(data_dir), str(pairs_file))
    monkeypatch.setattr(validate_on_lfw, 'load_model', lambda path, precision='float32': PooledPixels(), raising=False)
    capsys.readouterr()
    result = validate_on_lfw.main(validate_on_lfw.parse_arguments([
        str(data_dir), 'stand-in-model', '--lfw_pairs', str(pairs_file), '--image_size', str(IMAGE_SIZE)]))
    printed = capsys.readouterr().out
    assert 1 <= len(skipped) and result.nrof_pairs == 24 - len(skipped)
    assert printed.count('skipped') == 1
    assert (f'Warning: skipped {len(skipped)} of 24 pairs with a missing image ({" ".join(pairs[0])}'
            in printed)
    assert f'the figures are over the other {24 - len(skipped)} pairs (--strict stops instead)' in printed


def test_embed_images_uses_the_models_own_standardisation_by_default(tmp_path):
    data_dir = _faces(tmp_path / 'faces', nrof_identities=2, nrof_images=2)
    paths = sorted(str(path) for path in data_dir.rglob('*.png'))
    model = PooledPixels()
    prewhitened = embed_images(model, paths, IMAGE_SIZE, 4).embeddings
    fixed = embed_images(model, paths, IMAGE_SIZE, 4, use_fixed_image_standardization=True).embeddings
    assert np.abs(fixed - prewhitened).max() > 1e-3
    model.standardization = 'fixed'  # as load_model sets it for a pretrained name
    np.testing.assert_array_equal(embed_images(model, paths, IMAGE_SIZE, 4).embeddings, fixed)
    np.testing.assert_array_equal(embed_images(model, paths, IMAGE_SIZE, 4, use_fixed_image_standardization=False)
                                  .embeddings, prewhitened)
