"""train_tripletloss.py's part of a training run: the losses the core's step minimises, the
original's sampling round (sample people, embed them in training mode, select triplets) and the
inputs of both strategies.

Offline (`vggface`, the original): a round samples people_per_batch x images_per_person images,
embeds them with the network in training mode as the original's forward pass did (BatchNorm on
batch statistics, its moving averages updated), selects triplets with the original's rule and
trains on them in batches of batch_size images (batch_size / 3 whole triplets). Every random draw
of round r comes from a generator seeded by (seed, r), so a resumed run repeats exactly what an
uninterrupted one does from the same round on.

Online (`batch_hard`, `batch_semihard`, `batch_all`): P x K batches from triplets.pk_image_batches;
the loss mines the batch inside the step. Under several replicas the embeddings and labels of the
whole global batch are gathered, so every replica mines all of it.
"""
import logging
import math
import time

import numpy as np
import tensorflow as tf

from facenet_tf2.dataset import require_dataset
from facenet_tf2.errors import TrainingInputError
from facenet_tf2.pipeline import RANDOM_CROP, RANDOM_FLIP, UnreadableImages, create_input_pipeline
from facenet_tf2.training.loop import EpochPlan, Step, train
from facenet_tf2.training.startup import start_run
from facenet_tf2.training.stats import EPOCH, LEARNING_RATE, STEP, Stat
from facenet_tf2.training.triplets import (ONLINE_STRATEGIES, pk_classes, pk_image_batches, sample_people,
                                           select_triplet_indices, triplet_basic_loss)

log = logging.getLogger(__name__)

STRATEGIES = ['vggface'] + sorted(ONLINE_STRATEGIES)
STATS = (Stat('loss', STEP, 'Loss'), Stat('triplet_loss', STEP, 'Triplet'), Stat('fraction_active', STEP, 'Active',
                                                                                  '%.3f'),
         LEARNING_RATE, Stat('time_select', EPOCH))


def embed_in_training_mode(trainer, images):
    """L2-normalised float32 embeddings of the network in training mode (the original's
    tf.nn.l2_normalize(prelogits, 1, 1e-10) with phase_train True)."""
    prelogits = tf.cast(trainer.network(images, training=True), tf.float32)
    return tf.nn.l2_normalize(prelogits, 1, 1e-10)


def offline_triplet_loss(alpha):
    """loss_fn for Trainer.train_step on inputs (images [t, 3, h, w, 3], labels [t, 3]): the
    original's triplet loss over the global batch of triplets (global_batch_size counts images)."""

    def loss_fn(trainer, inputs, global_batch_size):
        images = inputs[0]
        flat = tf.reshape(images, [-1] + images.shape[2:].as_list())
        embeddings = embed_in_training_mode(trainer, flat)
        anchor, positive, negative = tf.unstack(tf.reshape(embeddings, [-1, 3, embeddings.shape[-1]]), 3, 1)
        basic = triplet_basic_loss(anchor, positive, negative, alpha)
        nrof_triplets = global_batch_size / 3.0
        loss = tf.reduce_sum(tf.maximum(basic, 0.0)) / nrof_triplets
        metrics = {'triplet_loss': loss, 'nrof_triplets': tf.cast(tf.shape(basic)[0], tf.float32),
                   'fraction_active': tf.reduce_sum(tf.cast(basic > 0.0, tf.float32)) / nrof_triplets}
        return loss, metrics, []

    return loss_fn


def online_triplet_loss(strategy_name, alpha):
    """loss_fn for Trainer.train_step on P x K inputs (images [B, h, w, 3], labels [B]) with the
    online strategy `strategy_name`; its metrics are the strategy's (nrof_triplets, nrof_active,
    fraction_active, ...)."""
    strategy = ONLINE_STRATEGIES[strategy_name]

    def loss_fn(trainer, inputs, global_batch_size):
        del global_batch_size  # the loss is a mean over the gathered global batch
        images, labels = inputs[0], inputs[1]
        embeddings = embed_in_training_mode(trainer, images)
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync
        if replicas > 1:
            embeddings = context.all_gather(embeddings, 0)
            labels = context.all_gather(labels, 0)
        loss, metrics = strategy(embeddings, labels, alpha)
        # Every replica computes the global value: each contributes 1/replicas of it to the sum.
        metrics = {key: tf.cast(value, tf.float32) / replicas for key, value in metrics.items()}
        metrics['triplet_loss'] = loss / replicas
        return loss / replicas, metrics, []

    return loss_fn


def round_seed(seed, round_index, purpose):
    """An int seed for tf.data of sampling round `round_index` (purpose 0: the sample's forward
    pass, 1: its triplets), a pure function of the run's seed."""
    return int(np.random.SeedSequence([int(seed), int(round_index), int(purpose)]).generate_state(1)[0] >> 1)


class SampleEmbedder:
    """The embeddings of a sample as the original's forward pass computed them (training mode,
    batches of batch_size), float64 [N, d] in sample order; NaN rows for images that could not
    be read (recorded in `unreadable`), which selection then never uses."""

    def __init__(self, trainer, image_size, batch_size, control, unreadable):
        self.trainer, self.image_size, self.batch_size = trainer, image_size, batch_size
        self.control, self.unreadable = control, unreadable
        strategy = trainer.strategy

        @tf.function
        def forward(distributed_batch):
            def embed(images, indices):
                return embed_in_training_mode(trainer, images), indices
            embeddings, indices = strategy.run(embed, args=distributed_batch)
            return strategy.gather(embeddings, 0), strategy.gather(indices, 0)

        self.forward = forward

    def __call__(self, image_paths, embedding_size, seed):
        embeddings = np.full((len(image_paths), embedding_size), np.nan)
        dataset = create_input_pipeline(image_paths, np.arange(len(image_paths)), self.control, self.image_size,
                                        self.batch_size, seed=seed, unreadable=self.unreadable)
        for batch in self.trainer.distribute(dataset):
            batch_embeddings, indices = self.forward(batch)
            embeddings[indices.numpy()] = batch_embeddings.numpy()
        return embeddings


def triplet_batches(image_paths, labels, triplets, control, image_size, batch_size, seed):
    """tf.data batches (images [t, 3, h, w, 3], labels [t, 3]) of the selected triplets (rows of
    sample indices), batch_size / 3 triplets each, the last one smaller, as the original's."""
    flat = triplets.reshape(-1)
    per_triplet = create_input_pipeline([image_paths[i] for i in flat], np.asarray(labels)[flat], control, image_size,
                                        3, seed=seed, drop_remainder=True)
    return per_triplet.batch(batch_size // 3)


def nrof_triplet_batches(nrof_triplets, batch_size):
    return int(math.ceil(nrof_triplets * 3 / batch_size))


def stat_rows(config):
    """A round of the original trains on all its triplets, so an epoch can run past epoch_size
    steps by up to one round."""
    nrof_pairs = config.people_per_batch * config.images_per_person * (config.images_per_person - 1) // 2
    round_steps = nrof_triplet_batches(nrof_pairs, config.batch_size) if config.triplet_strategy == 'vggface' else 0
    return {STEP: config.max_nrof_epochs * (config.epoch_size + round_steps), EPOCH: config.max_nrof_epochs}


def training_set(config):
    """The identities of --data_dir, refusing a set where triplets cannot be formed."""
    dataset = require_dataset(config.data_dir)
    usable = len(pk_classes(dataset))
    needed = 2 if config.triplet_strategy == 'vggface' else config.batch_size // config.images_per_person
    if usable < needed:
        raise TrainingInputError(f'--data_dir {config.data_dir}: {usable} people with 2 or more images, and '
                                 f'--triplet_strategy {config.triplet_strategy} needs {needed}; add identities with '
                                 'several images each')
    return dataset


class VggFacePlan(EpochPlan):
    """The original's epochs: sampling rounds until epoch_size batches have run; input_position
    counts the sampling rounds done."""

    def __init__(self, run, config, train_set, control):
        replicas = run.trainer.strategy.num_replicas_in_sync
        if config.batch_size % (3 * replicas):
            raise TrainingInputError(f'--batch_size {config.batch_size} must split into whole triplets over '
                                     f'{replicas} replicas: use a multiple of {3 * replicas}')
        self.run, self.config, self.train_set, self.control = run, config, train_set, control
        self.unreadable = UnreadableImages()
        self.embedder = SampleEmbedder(run.trainer, config.image_size, config.batch_size, control, self.unreadable)
        self.step_function = None
        self.input_position = run.input_position
        self.empty_rounds = 0
        self.select_seconds = 0.0

    def steps(self, epoch):
        config, trainer = self.config, self.run.trainer
        batch_number, self.select_seconds = 0, 0.0
        while batch_number < config.epoch_size:
            rounds_done = self.input_position
            rng = np.random.default_rng([config.seed, rounds_done])
            image_paths, nrof_images_per_class = sample_people(self.train_set, config.people_per_batch,
                                                               config.images_per_person, rng)
            start = time.time()
            embeddings = self.embedder(image_paths, config.embedding_size, round_seed(config.seed, rounds_done, 0))
            log.info('Running forward pass on sampled images: %.3f', time.time() - start)
            log.info('Selecting suitable triplets for training')
            triplets, nrof_pairs = select_triplet_indices(embeddings, nrof_images_per_class, config.people_per_batch,
                                                          config.alpha, rng)
            selection_time = time.time() - start
            self.select_seconds += selection_time
            log.info('(nrof_random_negs, nrof_triplets) = (%d, %d): time=%.3f seconds' %
                  (nrof_pairs, len(triplets), selection_time))
            self.run.summaries.scalars({'triplets/nrof_selected': len(triplets), 'triplets/nrof_pairs': nrof_pairs,
                                        'time/selection': selection_time}, self.run.global_step)
            self.input_position += 1
            if not len(triplets):
                # The original looped here for ever; a round without a triplet counts as one batch.
                self.empty_rounds += 1
                batch_number += 1
                log.warning(f'no triplet violates the margin alpha {config.alpha} in this sample (round '
                      f'{rounds_done}, {self.empty_rounds} such round(s) so far): nothing to train on, skipped')
                continue
            labels = np.repeat(np.arange(len(nrof_images_per_class)), nrof_images_per_class)
            distributed = trainer.distribute(triplet_batches(
                image_paths, labels, triplets, self.control, config.image_size, config.batch_size,
                round_seed(config.seed, rounds_done, 1)))
            if self.step_function is None:  # traced once for every round's batches, the smaller last ones too
                self.step_function = trainer.train_step(offline_triplet_loss(config.alpha),
                                                        input_spec=distributed.element_spec)
            batches = iter(distributed)
            nrof_examples = 3 * len(triplets)
            for i in range(nrof_triplet_batches(len(triplets), config.batch_size)):
                yield Step(self.step_function, batches, min(config.batch_size, nrof_examples - i * config.batch_size),
                           batch_number)
                batch_number += 1

    def epoch_figures(self, epoch):
        return {'time_select': self.select_seconds}

    def finish(self):
        if self.empty_rounds:
            log.info(f'{self.empty_rounds} sampling round(s) had no triplet violating the margin and trained nothing')
        if self.step_function is not None:
            log.info(f'The train step was traced {self.step_function.tracing_count()} time(s)')


class OnlinePlan(EpochPlan):
    """Epochs of epoch_size P x K batches mined inside the step; input_position counts batches."""

    def __init__(self, run, config, train_set, control):
        self.config = config
        self.unreadable = UnreadableImages()
        people = config.batch_size // config.images_per_person
        dataset = pk_image_batches(train_set, people, config.images_per_person, config.image_size, control,
                                   config.seed, start=run.input_position, unreadable=self.unreadable)
        distributed = run.trainer.distribute(dataset)
        self.batches = iter(distributed)
        # Batches shrink where unreadable files are left out: one trace for every batch size.
        self.step_function = run.trainer.train_step(online_triplet_loss(config.triplet_strategy, config.alpha),
                                                    input_spec=distributed.element_spec)
        self.input_position = run.input_position

    def steps(self, epoch):
        for batch_number in range(self.config.epoch_size):
            yield Step(self.step_function, self.batches, self.config.batch_size, batch_number)

    def after_step(self, run, results, batch_number):
        self.input_position += 1

    def epoch_figures(self, epoch):
        return {'time_select': 0.0}

    def finish(self):
        log.info(f'The train step was traced {self.step_function.tracing_count()} time(s)')


def train_tripletloss(config, script_path):
    """train_tripletloss.py: validates `config` (a TripletConfig), trains, exports; returns the model folder."""
    config.validate()
    train_set = training_set(config)
    run = start_run(config, script_path, {}, STATS, stat_rows(config))
    control = RANDOM_CROP * config.random_crop + RANDOM_FLIP * config.random_flip
    plan_class = VggFacePlan if config.triplet_strategy == 'vggface' else OnlinePlan
    return train(run, plan_class(run, config, train_set, control))
