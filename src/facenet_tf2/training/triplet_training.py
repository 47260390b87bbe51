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
import math

import numpy as np
import tensorflow as tf

from facenet_tf2.pipeline import create_input_pipeline
from facenet_tf2.training.triplets import ONLINE_STRATEGIES, triplet_basic_loss


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
        for batch in self.trainer.strategy.experimental_distribute_dataset(dataset):
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
