"""The generative scripts (src/generative/, decode_msceleb_dataset.py, download_and_extract.py): VAE
shapes and original variable names, the losses against their formulas, attribute-vector arithmetic,
short real training runs with resume, the MS-Celeb TSV decoder and the one-line refusals."""
import base64
import json
import os
import warnings

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from facenet_tf2 import cli
from facenet_tf2.commands import (calculate_attribute_vectors, decode_msceleb_dataset, download_and_extract,
                                  modify_attribute, train_vae)
from facenet_tf2.errors import UserError
from facenet_tf2.generative import attributes as attr
from facenet_tf2.generative import losses, models, perceptual, training
from facenet_tf2.generative.checkpoints import load_vae, vae_class, vae_weights
from facenet_tf2.images import read_image
from facenet_tf2.msceleb import decode_tsv_files
from facenet_tf2.training import folders
from facenet_tf2.training.checkpoints import save_name_based_checkpoint

from conftest import shared_path

BN = ('weights', 'BatchNorm/beta', 'BatchNorm/moving_mean', 'BatchNorm/moving_variance')
FC = ('weights', 'biases')


def names(scope, layer, leaves):
    return [f'{scope}/{layer}/{leaf}' for leaf in leaves]


def expected_dfc_vae_names():
    encoder = [n for i in range(1, 5) for n in names('encoder', f'Conv2d_{i}', BN)]
    encoder += names('encoder', 'Fc_1', FC) + names('encoder', 'Fc_2', FC)
    decoder = names('decoder', 'Fc_1', FC) + [n for i in range(1, 5) for n in names('decoder', f'Conv2d_{i}', BN)]
    return sorted(encoder + decoder)


@pytest.mark.parametrize('architecture, size, count, shapes', [
    ('dfc_vae', 64, 38, {'encoder/Conv2d_1/weights': (4, 4, 3, 32), 'encoder/Fc_2/weights': (4096, 20),
                         'decoder/Fc_1/weights': (20, 4096), 'decoder/Conv2d_4/weights': (3, 3, 32, 3)}),
    ('dfc_vae_large', 128, 46, {'encoder/Conv2d_5/weights': (4, 4, 256, 512), 'encoder/Fc_1/weights': (8192, 20),
                                'decoder/Conv2d_4/weights': (3, 3, 32, 3), 'decoder/Conv2d_5/weights': (3, 3, 3, 3)}),
    ('dfc_vae_resnet', 64, 138, {'encoder/Conv2d_1b/Conv2d_1b_3/weights': (4, 4, 32, 32),
                                 'decoder/Conv2d_4b/Conv2d_4b_1/BatchNorm/moving_variance': (3,),
                                 'decoder/Conv2d_4c/weights': (3, 3, 3, 3)}),
])
def test_vae_shapes_and_original_variable_names(architecture, size, count, shapes):
    vae = vae_class(f'generative.models.{architecture}')(20)
    assert vae.get_image_size() == size
    images = np.random.RandomState(0).randn(3, size, size, 3).astype(np.float32)
    mean, log_variance = vae.encoder(images, True)
    assert mean.shape == log_variance.shape == (3, 20)
    assert vae.decoder(mean, False).shape == (3, size, size, 3)
    weights = vae_weights(vae)
    assert len(weights) == count
    assert {name: weights[name].shape for name in shapes} == shapes
    if architecture == 'dfc_vae':
        assert sorted(weights) == expected_dfc_vae_names()
    # slim's conv2d with BatchNorm has no bias; the fully connected layers have one
    assert not any(name.endswith('biases') and '/Conv2d' in name for name in weights)


def test_vae_def_resolves_the_original_module_names():
    import generative.models.dfc_vae
    assert vae_class('generative.models.dfc_vae') is generative.models.dfc_vae.Vae is models.DfcVae
    assert vae_class('src.generative.models.dfc_vae_large') is models.DfcVaeLarge  # the original's default form
    assert vae_class('dfc_vae_resnet') is models.DfcVaeResnet
    with pytest.raises(UserError, match='no such module'):
        vae_class('generative.models.nothing')


def test_checkpoint_round_trip_and_latent_size_refusal(tmp_path):
    vae = models.DfcVae(16).build_variables()
    rng = np.random.RandomState(1)
    for variable in vae.weights:  # moving averages too: they are part of what the original saved
        variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype(np.float32))
    save_name_based_checkpoint(vae_weights(vae), str(tmp_path), 'run', 7)
    reader = tf.train.load_checkpoint(str(tmp_path / 'model-run.ckpt-7'))  # what a TF1 Saver reads
    assert sorted(reader.get_variable_to_shape_map()) == expected_dfc_vae_names()
    loaded = load_vae('generative.models.dfc_vae', 16, str(tmp_path))
    images = rng.randn(2, 64, 64, 3).astype(np.float32)
    np.testing.assert_allclose(loaded(images, training=False)[0], vae(images, training=False)[0], rtol=1e-5)
    with pytest.raises(UserError, match='latent variables of size 16, not 100; pass --latent_var_size 16'):
        load_vae('generative.models.dfc_vae', 100, str(tmp_path))
    with pytest.raises(Exception, match='not a checkpoint of dfc_vae_resnet'):
        load_vae('dfc_vae_resnet', 16, str(tmp_path))


def test_a_tf1_saver_checkpoint_of_the_original_names_loads(tmp_path):
    """What the original's tf.train.Saver(tf.trainable_variables()) wrote: model.ckpt-<step>."""
    shapes = {name: value.shape for name, value in vae_weights(models.DfcVae(8).build_variables()).items()}
    rng = np.random.RandomState(4)
    values = {name: rng.randn(*shape).astype(np.float32) for name, shape in shapes.items()}
    with tf.Graph().as_default():
        variables = [tf.compat.v1.get_variable(name, initializer=value, use_resource=False)
                     for name, value in values.items()]
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            prefix = tf.compat.v1.train.Saver(variables).save(session, str(tmp_path / 'model.ckpt'), global_step=5)
    loaded = vae_weights(load_vae('generative.models.dfc_vae', 8, prefix))
    assert sorted(loaded) == sorted(values)
    for name, value in values.items():
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)


def test_losses_match_their_formulas():
    rng = np.random.RandomState(2)
    mean, log_variance = rng.randn(4, 5), rng.randn(4, 5) * 0.3
    expected_kl = 0.5 * np.sum(np.exp(log_variance) + mean ** 2 - 1 - log_variance, axis=1)
    np.testing.assert_allclose(losses.kl_divergence_loss(tf.constant(mean), tf.constant(log_variance)), expected_kl,
                               rtol=1e-10)
    assert losses.kl_divergence_loss(tf.zeros((1, 3)), tf.zeros((1, 3))).numpy()[0] == 0.0
    a, b = rng.uniform(0, 255, (2, 8, 8, 3)), rng.uniform(0, 255, (2, 8, 8, 3))
    np.testing.assert_allclose(losses.plain_reconstruction_loss(tf.constant(a), tf.constant(b, tf.float32)),
                               np.sum((a - b) ** 2), rtol=1e-5)
    f1, f2, g1, g2 = (rng.randn(2, 4, 4, 3).astype(np.float32) for _ in range(4))
    total, terms = losses.perceptual_reconstruction_loss([f1, g1], [f2, g2])
    np.testing.assert_allclose(terms, [np.sum((f1 - f2) ** 2), np.sum((g1 - g2) ** 2)], rtol=1e-5)
    np.testing.assert_allclose(total, np.sum((f1 - f2) ** 2) + np.sum((g1 - g2) ** 2), rtol=1e-5)
    eps = rng.randn(4, 5)
    np.testing.assert_allclose(losses.sample_latent(mean, log_variance, eps), mean + eps * np.exp(log_variance / 2))
    x = rng.uniform(0, 255, (1, 2, 2, 3)).astype(np.float32)
    np.testing.assert_allclose(losses.denormalize(losses.normalize(x)), x, rtol=1e-5)
    np.testing.assert_allclose(losses.normalize(x), (x - losses.IMG_MEAN) / losses.IMG_STDDEV, rtol=1e-6)


def test_perceptual_features_are_the_networks_end_points():
    from models import inception_resnet_v1
    end_point_model = inception_resnet_v1.inception_resnet_v1(image_size=160, end_points=True)
    network = keras.Model(end_point_model.input, end_point_model.output['prelogits'], name='InceptionResnetV1')
    names = perceptual.parse_feature_names('Conv2d_1a_3x3,Conv2d_2a_3x3, Conv2d_2b_3x3,Mixed_5a')
    assert names == ['Conv2d_1a_3x3', 'Conv2d_2a_3x3', 'Conv2d_2b_3x3', 'Mixed_5a']
    features = perceptual.feature_model(network, names)
    assert features.trainable_weights == []
    images = np.random.RandomState(3).randn(2, 160, 160, 3).astype(np.float32)
    expected = end_point_model(images, training=False)
    for name, value in zip(names, features(images, training=False)):
        np.testing.assert_allclose(value, expected[name], rtol=1e-4, atol=1e-4)
    assert [f.shape[1] for f in features(images[:, :64, :64], training=False)][:3] == [31, 29, 29]
    with pytest.raises(UserError, match='Conv2d_9z: not an end point'):
        perceptual.feature_model(network, ['Conv2d_9z'])


def test_attribute_vector_arithmetic():
    latent_vars = np.array([[1., 0.], [3., 0.], [0., 2.], [0., 4.]])
    labels = np.array([[1, 1], [1, 1], [-1, 1], [-1, 1]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        vectors = attr.attribute_vectors(latent_vars, labels)
    np.testing.assert_allclose(vectors[0], [2.0, -3.0])  # mean(with) - mean(without)
    assert np.isnan(vectors[1]).all() and caught
    sweep = attr.sweep_latents(latent_vars, labels, vectors, 0, image_indices=[1, 0], nrof_interp_steps=2,
                               max_factor=5.0)
    # faces without attribute 0 are rows 2 and 3; index 1 is row 3; factors 0 and 2.5
    np.testing.assert_allclose(sweep, [[0, 4], [5, -3.5], [0, 2], [5, -5.5]])
    with pytest.raises(UserError, match='no vector'):
        attr.sweep_latents(latent_vars, labels, vectors, 1, image_indices=[0])
    with pytest.raises(UserError, match='past the 2 faces'):
        attr.sweep_latents(latent_vars, labels, vectors, 0, image_indices=[2])
    assert attr.sweep_grid_shape(16, 10) == (20, 8)


def test_read_annotations_celeba(tmp_path):
    filename = shared_path() / 'celeba_attributes' / 'list_attr_celeba.txt'
    if not filename.exists():
        pytest.skip(f'CelebA attributes not found at {filename} (set FACENET_SHARED)')
    fields, table = attr.read_annotations(str(filename))
    assert len(fields) == 40 and fields[31] == 'Smiling' and len(table) == 345
    assert sum(v[31] == 1 for v in table.values()) == 158
    bad = tmp_path / 'bad.txt'
    bad.write_text('2\nA B\n000001.jpg 1 -1\n000002.jpg 1\n')
    with pytest.raises(UserError, match='bad.txt:4: expected an image name and 2 values'):
        attr.read_annotations(str(bad))


@pytest.fixture(scope='module')
def faces_64(tmp_path_factory):
    """48 real LFW faces as 64 px crops of the deep-funneled images' centre, in identity folders."""
    lfw = shared_path() / 'lfw' / 'lfw-deepfunneled'
    if not lfw.exists():
        pytest.skip(f'LFW images not found at {lfw} (set FACENET_SHARED)')
    root = tmp_path_factory.mktemp('faces_64')
    people = sorted(p for p in os.listdir(lfw) if len(os.listdir(lfw / p)) >= 4)[:12]
    for person in people:
        (root / person).mkdir()
        for name in sorted(os.listdir(lfw / person))[:4]:
            image = Image.open(lfw / person / name).convert('RGB').crop((65, 65, 185, 185)).resize((64, 64), Image.BILINEAR)
            image.save(root / person / (os.path.splitext(name)[0] + '.png'))
    return root


def run(command, argv):
    """A script's cli path in this process: its return value, or the one-line error it exits with."""
    return cli.run_script(command.main, command.parse_arguments, argv, prog=command.__name__.rsplit('.', 1)[-1])


def refusal(command, argv):
    with pytest.raises(SystemExit) as exit_info:
        run(command, argv)
    message = str(exit_info.value.code)
    assert '\n' not in message
    return message


def train_args(data_dir, models_dir, steps, extra=()):
    return ['generative.models.dfc_vae', str(data_dir), 'models.inception_resnet_v1', 'unused-for-PLAIN',
            '--input_image_size', '64', '--reconstruction_loss_type', 'PLAIN', '--batch_size', '16',
            '--latent_var_size', '16', '--max_nrof_steps', str(steps), '--save_every_n_steps', str(min(steps, 8)),
            '--models_base_dir', str(models_dir), *extra]


@pytest.fixture(scope='module')
def trained_run(faces_64, tmp_path_factory):
    """(argv, model folder) of a 24-step PLAIN run of train_vae.py on the real faces."""
    argv = train_args(faces_64, tmp_path_factory.mktemp('vae'), 24)
    return argv, run(train_vae, argv)


def test_short_real_training_run_losses_fall_and_outputs(trained_run, faces_64):
    _, model_dir = trained_run
    with h5py.File(os.path.join(model_dir, 'logs.h5'), 'r') as f:
        log = {key: np.asarray(f[key]) for key in training.LOG_KEYS}
    assert all(len(v) == 24 for v in log.values())
    np.testing.assert_allclose(log['total_loss'], 1.0 * log['kl_loss'] + 0.5 * log['reconstruction_loss'], rtol=1e-4)
    assert log['reconstruction_loss'][-4:].mean() < 0.9 * log['reconstruction_loss'][:4].mean()  # 0.83 measured
    assert np.median(log['kl_loss'][-4:]) < 0.1 * np.max(log['kl_loss'][:8])  # from the stddev-0.1 initialisation
    assert Image.open(os.path.join(model_dir, 'reconstructed_000024.png')).size == (16 * 67 + 3, 8 * 67 + 3)
    subdir = os.path.basename(model_dir)
    assert tf.train.latest_checkpoint(model_dir).endswith(f'model-{subdir}.ckpt-24')


def test_recalibrated_batch_norm_averages_are_the_mean_batch_statistics(faces_64):
    vae = models.DfcVae(8).build_variables()
    paths = sorted(faces_64.glob('*/*.png'))[:16]
    batches = [np.stack([read_image(str(p)) for p in paths[i:i + 8]]).astype(np.float32) for i in (0, 8)]
    training.recalibrate_batch_norm(vae, iter(batches), 2, seed=0)
    conv = vae.encoder_network.parts[0]  # encoder/Conv2d_1: its BatchNorm sees the first convolution
    pre = [tf.nn.conv2d(losses.normalize(b), conv.kernel, 2, 'SAME').numpy() for b in batches]
    n = pre[0].shape[0] * pre[0].shape[1] * pre[0].shape[2]
    np.testing.assert_allclose(conv.batch_norm.moving_mean.numpy(), np.mean([p.mean((0, 1, 2)) for p in pre], 0),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(conv.batch_norm.moving_variance.numpy(),
                               np.mean([p.var((0, 1, 2)) * n / (n - 1) for p in pre], 0), rtol=1e-3)
    assert conv.batch_norm.momentum == 0.995  # restored


def test_same_command_resumes_an_unfinished_run(trained_run, tmp_path):
    argv, model_dir = trained_run
    finished = os.path.join(model_dir, 'finished')
    assert os.path.exists(finished)
    arguments = json.load(open(os.path.join(model_dir, folders.RUN_FILE)))['arguments']
    models_base_dir = os.path.dirname(model_dir)
    assert folders.find_resumable_run(models_base_dir, arguments) is None  # finished: the next run is new
    os.remove(finished)  # as if killed after its last save
    assert folders.find_resumable_run(models_base_dir, arguments) == os.path.basename(model_dir)
    assert run(train_vae, argv) == model_dir  # resumed at step 24: nothing left to do
    assert os.path.exists(finished)


def test_resume_after_a_kill_gives_the_uninterrupted_run(faces_64, tmp_path):
    args = train_vae.parse_arguments(train_args(faces_64, tmp_path / 'a', 8) + ['--save_every_n_steps', '4'])
    images = [str(p) for p in sorted(faces_64.glob('*/*.png'))]

    def trained(models_dir, kill_at=None):
        os.makedirs(models_dir, exist_ok=True)

        def progress(text):
            if kill_at and text.startswith(f'Step: {kill_at} '):
                raise KeyboardInterrupt
        keras.utils.set_random_seed(args.seed)  # as train_vae.py does: the same initial weights
        trainer = training.VaeTrainer(models.DfcVae(16), args)
        try:
            training.train(trainer, images, models_dir, 'run', resumed=False, progress=progress)
        except KeyboardInterrupt:
            trainer = training.VaeTrainer(models.DfcVae(16), args)  # a new process: nothing kept
            training.train(trainer, images, models_dir, 'run', resumed=True, progress=lambda text: None)
        return vae_weights(trainer.vae), h5py.File(os.path.join(models_dir, 'logs.h5'), 'r')['total_loss'][:]

    straight, straight_log = trained(str(tmp_path / 'straight'))
    resumed, resumed_log = trained(str(tmp_path / 'killed'), kill_at=6)  # after the step-4 save
    np.testing.assert_allclose(resumed_log, straight_log, rtol=1e-6)
    for name in straight:
        np.testing.assert_allclose(resumed[name], straight[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_perceptual_training_step_on_the_facenet_model(faces_64, frozen_model_pb, tmp_path):
    argv = train_args(faces_64, tmp_path, 3)
    argv[3] = str(frozen_model_pb)
    argv[argv.index('PLAIN')] = 'PERCEPTUAL'
    model_dir = run(train_vae, argv)
    with h5py.File(os.path.join(model_dir, 'logs.h5'), 'r') as f:
        rec = np.asarray(f['reconstruction_loss'])
    assert len(rec) == 3 and np.all(np.isfinite(rec)) and rec.min() > 0


@pytest.fixture(scope='module')
def celeba_64(tmp_path_factory):
    folder = shared_path() / 'celeba_attributes'
    if not folder.exists():
        pytest.skip(f'CelebA subset not found at {folder} (set FACENET_SHARED)')
    root = tmp_path_factory.mktemp('celeba_64')
    for name in sorted(os.listdir(folder / 'images'))[:24]:
        image = Image.open(folder / 'images' / name).convert('RGB')
        side = min(image.size)
        image.crop((0, 0, side, side)).resize((64, 64), Image.BILINEAR).save(root / (name.split('.')[0] + '.png'))
    return root, folder / 'list_attr_celeba.txt'


def test_attribute_scripts_and_their_refusals(trained_run, faces_64, celeba_64, tmp_path):
    _, model_dir = trained_run
    images, annotations = celeba_64
    output = tmp_path / 'attributes.h5'
    run(calculate_attribute_vectors, ['generative.models.dfc_vae', model_dir, str(images), str(annotations),
                                      str(output), '--latent_var_size', '16', '--batch_size', '10'])
    latent_vars, labels, fields, vectors = attr.read_attribute_file(str(output))
    assert latent_vars.shape == (24, 16) and labels.shape == (24, 40) and fields[31] == 'Smiling'
    np.testing.assert_allclose(vectors, attr.attribute_vectors(latent_vars, labels), rtol=1e-5, equal_nan=True)
    grid = tmp_path / 'smile.png'
    nrof_without = int(np.sum(labels[:, 31] == -1))
    recon = run(modify_attribute, ['generative.models.dfc_vae', model_dir, str(output), str(grid),
                                   '--latent_var_size', '16', '--image_indices', f'0,1,{nrof_without - 1}'])
    assert recon.shape == (30, 64, 64, 3)
    assert Image.open(grid).size == (20 * 67 + 3, 2 * 67 + 3)

    common = ['generative.models.dfc_vae', model_dir, str(images)]
    message = refusal(calculate_attribute_vectors, common + [str(tmp_path / 'none.txt'), str(output),
                                                            '--latent_var_size', '16'])
    assert 'none.txt: no such attribute file' in message
    message = refusal(calculate_attribute_vectors, common + [str(annotations), str(output)])
    assert 'latent variables of size 16, not 100; pass --latent_var_size 16' in message
    message = refusal(calculate_attribute_vectors, common + [str(annotations), str(output), '--latent_var_size',
                                                            '16', '--image_size', '128'])
    assert 'image is 64x64, not 128x128 (--image_size)' in message
    message = refusal(train_vae, train_args(faces_64, tmp_path / 'x', 4)[:4] + ['--reconstruction_loss_type', 'PLAIN'])
    assert 'not 160x160 (--input_image_size); align with --image_size 160 or pass --input_image_size 64' in message


def test_decode_msceleb_tsv_of_real_photos(tmp_path):
    lfw = shared_path() / 'lfw' / 'lfw-deepfunneled'
    if not lfw.exists():
        pytest.skip(f'LFW images not found at {lfw} (set FACENET_SHARED)')
    people = sorted(p for p in lfw.iterdir() if len(list(p.iterdir())) >= 2)
    photos = sorted(people[0].iterdir())[:2] + sorted(people[1].iterdir())[:1]
    data = [base64.b64encode(p.read_bytes()).decode() for p in photos]
    lines = [f'm.0ap\tAaron/Peirsol\t1\thttp://x/1.jpg\tFaceId-0\t{data[0]}',
             f'm.0ap\tAaron/Peirsol\t2\thttp://x/2.jpg\tFaceId-1\t{data[1]}',
             'm.0short\tonly\tthree',
             f'm.0bad\tX\t1\tu\tFaceId-2\t@@not base64 image@@',
             f'm.0ae\tSomeone Else\t1\thttp://x/3.jpg\tFaceId-3\t{data[2]}',
             f'm.0cut\tX\t1\tu\tFaceId-4\t{data[2][:300]}']
    tsv = tmp_path / 'part.tsv'
    tsv.write_text('\n'.join(lines) + '\n')
    summary = decode_tsv_files([str(tsv)], str(tmp_path / 'out'), progress=lambda text: None)
    assert summary.written == 3 and [number for _, number, _ in summary.bad_lines] == [3, 4, 6]
    assert '3 images written, 3 bad lines skipped' in summary.report()
    written = tmp_path / 'out' / 'm.0ap' / 'Aaron_Peirsol-FaceId-0.png'
    np.testing.assert_array_equal(read_image(str(written)), np.asarray(Image.open(photos[0]).convert('RGB')))
    out = tmp_path / 'sized'
    result = run(decode_msceleb_dataset, [str(out), str(tsv), '--size', '32', '--output_format', 'jpg'])
    assert result.written == 3
    assert Image.open(out / 'm.0ae' / 'Someone Else-FaceId-3.jpg').size == (32, 32)
    assert 'no such TSV file' in refusal(decode_msceleb_dataset, [str(out), str(tmp_path / 'missing.tsv')])


def test_download_and_extract_says_what_it_cannot_fetch(tmp_path):
    assert 'lfw-subset: cannot be fetched' in refusal(download_and_extract, ['lfw-subset', str(tmp_path)])
    assert 'unknown model; give one of 20180402-114759' in refusal(download_and_extract, ['2016', str(tmp_path)])
