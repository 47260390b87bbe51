"""train_vae.py's training: input stream, the tf.function step, logs, grids, checkpoints and resume.

A step does what the original's train op did: images (input_image_size px, 0..255) normalised by
the dataset statistics and resized (bilinear) to the VAE's size; encoder and decoder in training
mode (BatchNorm on batch statistics); a latent sample mean + eps * exp(lv / 2); the loss
alfa * mean KL + beta * reconstruction, PLAIN (pixels at the VAE's size) or PERCEPTUAL (the frozen
facenet feature maps of input and of reconstruction resized back to input_image_size); Adam on the
VAE's variables only, the learning rate decayed in steps (tf.train.exponential_decay, staircase).

At every save the BatchNorm moving averages are recomputed as plain averages over
RECALIBRATION_BATCHES training batches (at most one epoch) of the current weights (`recalibrate_batch_norm`). The
original kept slim's decay-0.995 averages, which after a few hundred steps still hold the huge
activations of the first steps (from the stddev-0.1 initialisation): its inference-mode decoder
(modify_attribute.py) then draws flat grey faces. Training itself uses batch statistics, so the
losses are unchanged.

Resume: the VAE, the Adam slots, the step and the sampling generator's state are kept by a
CheckpointManager in `<model_dir>/training_state`, written with the checkpoint, logs.h5 and the
reconstruction grid every save_every_n_steps; the input order is a function of (seed, epoch), so a
resumed run sees the batches and noise an uninterrupted one would have.
"""
import os
import time

import h5py
import numpy as np
import tensorflow as tf
from PIL import Image

from facenet_tf2.errors import TrainingInputError
from facenet_tf2.files import atomic_path
from facenet_tf2.generative import losses
from facenet_tf2.generative.checkpoints import vae_weights
from facenet_tf2.images import put_images_on_grid
from facenet_tf2.pipeline import decode_image_file
from facenet_tf2.nets.layers import SlimBatchNormalization
from facenet_tf2.training.checkpoints import save_name_based_checkpoint
from facenet_tf2.training.folders import STATE_DIR, mark_finished
from facenet_tf2.training.optimizers import create_optimizer

RECALIBRATION_BATCHES = 20
LOG_KEYS = ('total_loss', 'reconstruction_loss', 'kl_loss', 'learning_rate')


def check_image_sizes(image_paths, image_size, what='--input_image_size'):
    """Refuses, naming the first offender, images that are not image_size x image_size (read from
    the file headers only)."""
    if not image_paths:
        raise TrainingInputError('the dataset holds no images; give a folder of identity folders of aligned faces')
    for path in image_paths:
        try:
            with Image.open(path) as image:
                size = image.size
        except OSError as e:
            raise TrainingInputError(f'{path}: cannot read the image ({e}); remove it or align again') from None
        if size != (image_size, image_size):
            raise TrainingInputError(f'{path}: image is {size[0]}x{size[1]}, not {image_size}x{image_size} ({what}); '
                                     f'align with --image_size {image_size} or pass {what} {size[0]}')


def epoch_order(nrof_images, seed, epoch):
    """The shuffled order of one epoch, a function of (seed, epoch) only."""
    return np.random.RandomState((seed * 1000003 + epoch) % (2 ** 32)).permutation(nrof_images)


def image_batches(image_paths, batch_size, seed, start_step=0):
    """tf.data stream of float32 batches [batch_size, S, S, 3] (0..255) starting at batch
    `start_step` of the endless seeded shuffled stream; full batches only, as the original."""
    paths = np.asarray(image_paths)
    nrof_images = len(paths)

    def ordered_paths():
        position = start_step * batch_size
        epoch, offset = divmod(position, nrof_images)
        while True:
            order = epoch_order(nrof_images, seed, epoch)
            for index in order[offset:]:
                yield paths[index]
            epoch, offset = epoch + 1, 0

    dataset = tf.data.Dataset.from_generator(ordered_paths, output_signature=tf.TensorSpec([], tf.string))
    dataset = dataset.map(lambda path: tf.cast(decode_image_file(path)[0], tf.float32),
                          num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(2)


def learning_rate_at(step, args):
    """tf.train.exponential_decay(initial, step, decay_steps, factor, staircase=True)."""
    return args.initial_learning_rate * args.learning_rate_decay_factor ** (step // args.learning_rate_decay_steps)


class VaeTrainer:
    """The VAE, its optimizer and the train step; `features` is the perceptual feature model (None
    for PLAIN)."""

    def __init__(self, vae, args, features=None, mean=losses.IMG_MEAN, stddev=losses.IMG_STDDEV):
        self.vae = vae.build_variables()
        self.args = args
        self.features = features
        self.mean, self.stddev = np.asarray(mean, np.float32), np.asarray(stddev, np.float32)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='global_step')
        self.generator = tf.random.Generator.from_seed(args.seed)
        # tf.train.AdamOptimizer's defaults, as train_vae.py used it (facenet.train's ADAM had epsilon 0.1)
        self.optimizer = create_optimizer('ADAM', learning_rate=args.initial_learning_rate, beta1=0.9, beta2=0.999,
                                          epsilon=1e-8)
        self.optimizer.build(self.vae.trainable_variables)
        self.train_step = tf.function(self._train_step, reduce_retracing=True)

    def _train_step(self, images, learning_rate):
        gen_size = self.vae.get_image_size()
        images_norm = losses.normalize(images, self.mean, self.stddev)
        images_norm_resize = tf.image.resize(images_norm, (gen_size, gen_size))
        with tf.GradientTape() as tape:
            mean, log_variance = self.vae.encoder(images_norm_resize, True)
            epsilon = self.generator.normal(tf.shape(mean))
            latent_var = losses.sample_latent(mean, log_variance, epsilon)
            reconstructed_norm = self.vae.decoder(latent_var, True)
            reconstructed = losses.denormalize(reconstructed_norm, self.mean, self.stddev)
            if self.features is None:
                images_resize = tf.image.resize(images, (gen_size, gen_size))
                reconstruction_loss = losses.plain_reconstruction_loss(images_resize, reconstructed)
            else:
                size = tf.shape(images)[1:3]
                both = tf.concat([images_norm, tf.image.resize(reconstructed_norm, size)], axis=0)
                maps = self.features(both, training=False)
                maps = maps if isinstance(maps, (list, tuple)) else [maps]
                halves = [tf.split(m, 2, axis=0) for m in maps]
                reconstruction_loss, _ = losses.perceptual_reconstruction_loss(
                    [h[0] for h in halves], [h[1] for h in halves])
            kl_loss_mean = tf.reduce_mean(losses.kl_divergence_loss(mean, log_variance))
            total_loss = self.args.alfa * kl_loss_mean + self.args.beta * reconstruction_loss
        variables = self.vae.trainable_variables
        gradients = tape.gradient(total_loss, variables)
        self.optimizer.learning_rate.assign(learning_rate)
        self.optimizer.apply(gradients, variables)
        self.step.assign_add(1)
        return reconstruction_loss, kl_loss_mean, total_loss, reconstructed

    def state(self):
        return tf.train.Checkpoint(vae=self.vae, optimizer=self.optimizer, step=self.step, generator=self.generator)


def recalibrate_batch_norm(vae, batches, nrof_batches, seed, mean=losses.IMG_MEAN, stddev=losses.IMG_STDDEV):
    """Sets every BatchNorm's moving mean and variance to the average of its batch statistics over
    `nrof_batches` batches of `batches` (0..255 images), encoder and decoder run as in training
    (latents sampled with a generator of their own, so the training's noise is untouched)."""
    norms = [layer for layer in vae._flatten_layers() if isinstance(layer, SlimBatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    generator = tf.random.Generator.from_seed(seed)
    size = vae.get_image_size()
    try:
        for k, images in zip(range(nrof_batches), batches):
            for layer in norms:
                layer.momentum = k / (k + 1.0)  # running mean: batch k gets weight 1 / (k + 1)
            mu, log_variance = vae.encoder(tf.image.resize(losses.normalize(images, mean, stddev), (size, size)), True)
            vae.decoder(losses.sample_latent(mu, log_variance, generator.normal(tf.shape(mu))), True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum


def write_logs(filename, log):
    with atomic_path(filename) as temporary, h5py.File(temporary, 'w') as f:
        for key in LOG_KEYS:
            f.create_dataset(key, data=np.asarray(log[key], np.float64))


def read_logs(filename, nrof_steps):
    """The logs of a resumed run's first `nrof_steps` steps (later entries belong to steps redone)."""
    log = {key: [] for key in LOG_KEYS}
    if os.path.exists(filename):
        with h5py.File(filename, 'r') as f:
            for key in LOG_KEYS:
                if key in f:
                    log[key] = list(np.asarray(f[key])[:nrof_steps])
    return log


def save_grid(images, filename, shape=(16, 8)):
    """The original's reconstructed_<step>.png: the batch's reconstructions on a grid."""
    grid = put_images_on_grid(np.clip(np.asarray(images), 0, 255), shape=shape)
    with atomic_path(filename) as temporary:
        Image.fromarray(grid.astype(np.uint8)).save(temporary, format='PNG')


def train(trainer, image_paths, model_dir, subdir, resumed, progress=print):
    """Runs the training loop to args.max_nrof_steps; returns the log {key: list}."""
    args = trainer.args
    state_dir = os.path.join(model_dir, STATE_DIR)
    manager = tf.train.CheckpointManager(trainer.state(), state_dir, max_to_keep=2)
    if resumed and manager.latest_checkpoint:
        manager.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        progress(f'Resuming at step {int(trainer.step.numpy())} from {manager.latest_checkpoint}')
    step = int(trainer.step.numpy())
    log_file_name = os.path.join(model_dir, 'logs.h5')
    log = read_logs(log_file_name, step)
    batches = iter(image_batches(image_paths, args.batch_size, args.seed, start_step=step))
    calibration_batches = min(RECALIBRATION_BATCHES, len(image_paths) // args.batch_size)  # at most one epoch
    progress('Running training')
    while step < args.max_nrof_steps:
        start_time = time.time()
        learning_rate = learning_rate_at(step, args)
        rec_loss, kl_loss, total_loss, reconstructed = trainer.train_step(next(batches), tf.constant(learning_rate, tf.float32))
        step += 1
        for key, value in zip(LOG_KEYS, (total_loss, rec_loss, kl_loss, learning_rate)):
            log[key].append(float(value))
        progress('Step: %d \tTime: %.3f \trec_loss: %.3f \tkl_loss: %.3f \ttotal_loss: %.3f'
                 % (step, time.time() - start_time, float(rec_loss), float(kl_loss), float(total_loss)))
        if not np.isfinite(float(total_loss)):
            raise TrainingInputError(f'the loss became {float(total_loss)} at step {step}; lower '
                                     '--initial_learning_rate or --beta (the last checkpoint is kept)')
        if step % args.save_every_n_steps == 0 or step == args.max_nrof_steps:
            calibration = image_batches(image_paths, args.batch_size, args.seed + 1, start_step=step)
            recalibrate_batch_norm(trainer.vae, calibration, calibration_batches, args.seed + step,
                                   trainer.mean, trainer.stddev)
            save_grid(reconstructed.numpy(), os.path.join(model_dir, 'reconstructed_%06d.png' % step))
            save_name_based_checkpoint(vae_weights(trainer.vae), model_dir, subdir, step)
            write_logs(log_file_name, log)
            manager.save(checkpoint_number=step)  # last: a resumed run never starts past its logs
            progress(f'Saved checkpoint, logs and grid at step {step}')
    mark_finished(model_dir)
    return log
