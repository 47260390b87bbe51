"""train_softmax.py's part of a training run: its data, the classifier head, the centres, the
loss, its statistics, its epochs and the validation pass.

The loss is the original's total: cross entropy of the `Logits` head (or an ArcFace/CosFace
margin head) + prelogits_norm_loss_factor * mean p-norm of the prelogits + center_loss_factor *
center loss + weight decay (added by the core). The centres are always kept and updated, as the
original did whatever the factor.
"""
import logging
import math
import os

import numpy as np
import tensorflow as tf

from facenet_tf2.dataset import get_image_paths_and_labels, require_dataset, split_dataset
from facenet_tf2.errors import TrainingInputError
from facenet_tf2.pipeline import (FIXED_STANDARDIZATION, RANDOM_CROP, RANDOM_FLIP, RANDOM_ROTATE, UnreadableImages,
                                  create_input_pipeline)
from facenet_tf2.training import losses
from facenet_tf2.training.filtering import filter_dataset
from facenet_tf2.training.loop import EpochPlan, Step, train
from facenet_tf2.training.startup import start_run
from facenet_tf2.training.stats import EPOCH, LEARNING_RATE, STEP, VALIDATION, Stat

log = logging.getLogger(__name__)


class CenterLossModule(losses.CenterLoss):
    """The centres, which the optimizer steps as well (the original gave it every global variable)."""

    def optimized_variables(self):
        return [self.centers]


def softmax_modules(nrof_classes, embedding_size, weight_decay, center_loss_alfa, loss='softmax', margin_s=None,
                    margin_m=None):
    """Builders of the modules a softmax run trains beside the network, for Trainer(modules=...)."""
    return {
        'Logits': lambda: losses.make_classifier_head(loss, nrof_classes, weight_decay, margin_s, margin_m),
        'centers': lambda: CenterLossModule(nrof_classes, embedding_size, center_loss_alfa, name='center_loss'),
    }


PRELOGITS_HIST_BINS = 1000


def softmax_loss(prelogits_norm_p=1.0, prelogits_norm_loss_factor=0.0, center_loss_factor=0.0,
                 prelogits_hist_max=10.0):
    """loss_fn for Trainer.train_step, on inputs (images, labels[, stream positions]). Besides the
    loss terms its metrics hold the original's `prelogits_hist` (counts of min(|prelogits|, max) in
    1000 bins over [0, prelogits_hist_max]) and, given positions, where the input stream is."""

    def loss_fn(trainer, inputs, global_batch_size):
        images, labels = inputs[0], inputs[1]
        head, centers = trainer.modules['Logits'], trainer.modules['centers']
        prelogits = tf.cast(trainer.network(images, training=True), tf.float32)
        logits = head(prelogits, labels)
        plain_logits = logits if isinstance(head, losses.SoftmaxHead) else head(prelogits)
        cross_entropy = losses.softmax_cross_entropy(labels, logits, global_batch_size)
        norm = losses.prelogits_norm(prelogits, prelogits_norm_p, global_batch_size)
        center_loss, delta = centers(prelogits, labels, global_batch_size=global_batch_size)
        loss = cross_entropy + prelogits_norm_loss_factor * norm + center_loss_factor * center_loss

        def update_centers():
            centers.apply_update(tf.distribute.get_replica_context().all_reduce('sum', delta))

        metrics = {
            'xent_loss': cross_entropy,
            'prelogits_norm': norm,
            'center_loss': center_loss,
            'accuracy': losses.accuracy(labels, plain_logits, global_batch_size),
            'prelogits_hist': losses.fixed_width_histogram(tf.minimum(tf.abs(prelogits), prelogits_hist_max),
                                                              [0.0, prelogits_hist_max], PRELOGITS_HIST_BINS),
            'outputs': {'prelogits': prelogits, 'logits': logits},
        }
        if len(inputs) > 2:
            metrics['position_max'] = tf.reduce_max(inputs[2]) + 1
        return loss, metrics, [update_centers]

    return loss_fn


def softmax_validation(trainer, prelogits_norm_p=1.0, prelogits_norm_loss_factor=0.0, center_loss_factor=0.0):
    """A tf.function (images, labels) -> {loss, xent_loss, accuracy} in inference mode, as the
    original's validation pass (same terms as training, nothing updated)."""
    head, centers = trainer.modules['Logits'], trainer.modules['centers']

    @tf.function(reduce_retracing=True)
    def validate(images, labels):
        prelogits = tf.cast(trainer.network(images, training=False), tf.float32)
        logits = head(prelogits, labels)
        plain_logits = logits if isinstance(head, losses.SoftmaxHead) else head(prelogits)
        cross_entropy = losses.softmax_cross_entropy(labels, logits)
        center_loss, _ = centers(prelogits, labels)
        regularization = [tf.cast(term, tf.float32) for module in trainer.trained_modules() for term in module.losses]
        loss = (cross_entropy + prelogits_norm_loss_factor * losses.prelogits_norm(prelogits, prelogits_norm_p)
                + center_loss_factor * center_loss + (tf.add_n(regularization) if regularization else 0.0))
        return {'loss': loss, 'xent_loss': cross_entropy, 'accuracy': losses.accuracy(labels, plain_logits)}

    return validate


# In the original console line's order.
STATS = (Stat('loss', STEP, 'Loss'), Stat('xent_loss', STEP, 'Xent'), Stat('reg_loss', STEP, 'RegLoss'),
         Stat('accuracy', STEP, 'Accuracy'), LEARNING_RATE, Stat('center_loss', STEP, 'Cl'),
         Stat('prelogits_norm', STEP), Stat('prelogits_hist', EPOCH, shape=(PRELOGITS_HIST_BINS,)),
         Stat('time_validate', EPOCH), Stat('val_loss', VALIDATION), Stat('val_xent_loss', VALIDATION),
         Stat('val_accuracy', VALIDATION))


def stat_rows(config):
    return {STEP: config.max_nrof_epochs * config.epoch_size, EPOCH: config.max_nrof_epochs,
            VALIDATION: int(math.ceil(config.max_nrof_epochs / config.validate_every_n_epochs))}


def training_set(config):
    """(train_set, val_set) as the original made them, refusing what cannot train."""
    dataset = require_dataset(config.data_dir, 'training data folder')
    if config.filter_filename:
        dataset = filter_dataset(dataset, os.path.expanduser(config.filter_filename), config.filter_percentile,
                                 config.filter_min_nrof_images_per_class)
    empty = [cls.name for cls in dataset if not cls.image_paths]
    if empty:
        raise TrainingInputError(f'--data_dir {config.data_dir}: {len(empty)} class(es) without images'
                                 f'{" after filtering" if config.filter_filename else ""} (e.g. {empty[0]}); remove '
                                 'them or lower --filter_min_nrof_images_per_class')
    if len(dataset) < 2:
        raise TrainingInputError(f'--data_dir {config.data_dir}: {len(dataset)} class(es); a classifier needs at '
                                 'least 2 identity folders')
    if config.validation_set_split_ratio > 0.0:
        np.random.seed(config.seed)
        train_set, val_set = split_dataset(dataset, config.validation_set_split_ratio,
                                           config.min_nrof_val_images_per_class, 'SPLIT_IMAGES')
        if len(train_set) < 2:
            raise TrainingInputError(f'--validation_set_split_ratio {config.validation_set_split_ratio}: only '
                                     f'{len(train_set)} class(es) keep enough images; lower it or '
                                     '--min_nrof_val_images_per_class')
        return train_set, val_set
    return dataset, []


class SoftmaxPlan(EpochPlan):
    """epoch_size batches of the seeded training stream per epoch; input_position counts the
    stream's images taken so far."""

    def __init__(self, run, config, image_list, label_list, validation_images):
        self.config = config
        self.unreadable = UnreadableImages()
        control = (RANDOM_ROTATE * config.random_rotate + RANDOM_CROP * config.random_crop
                   + RANDOM_FLIP * config.random_flip + FIXED_STANDARDIZATION * config.use_fixed_image_standardization)
        self.batches = run.batches(image_list, label_list, control, self.unreadable)
        self.loss_terms = (config.prelogits_norm_p, config.prelogits_norm_loss_factor, config.center_loss_factor)
        self.step_function = run.trainer.train_step(softmax_loss(*self.loss_terms,
                                                                 prelogits_hist_max=config.prelogits_hist_max))
        self.validation_images = validation_images
        self.validate = softmax_validation(run.trainer, *self.loss_terms) if validation_images[0] else None
        self.input_position = run.input_position

    def steps(self, epoch):
        for batch_number in range(self.config.epoch_size):
            yield Step(self.step_function, self.batches, self.config.batch_size, batch_number)

    def derived(self, results):
        return {'reg_loss': reg_loss(results, self.config)}

    def after_step(self, run, results, batch_number):
        self.input_position = max(self.input_position, int(results['position_max']))
        if batch_number % 100 == 0:
            run.summaries.histogram_counts('prelogits', results['prelogits_hist'],
                                           (0.0, self.config.prelogits_hist_max), run.global_step)

    def validation(self, run, epoch):
        every = self.config.validate_every_n_epochs
        due = self.validate is not None and ((epoch - 1) % every == every - 1 or epoch == self.config.max_nrof_epochs)
        return (lambda: run_validation(run, self.config, self.validate, *self.validation_images, epoch)) if due else None


def reg_loss(results, config):
    """The original's RegLoss column: weight decay plus the weighted prelogits norm and centre loss."""
    return (results['weight_decay'] + config.prelogits_norm_loss_factor * results['prelogits_norm']
            + config.center_loss_factor * results['center_loss'])


def run_validation(run, config, validate, image_list, label_list, epoch):
    """The original's validation pass: the held-out images in inference mode, whole batches of
    --lfw_batch_size as the original, fixed standardisation if the training used it."""
    log.info('Running forward pass on validation set')
    nrof_batches = max(1, len(label_list) // config.lfw_batch_size)
    nrof_images = min(len(label_list), nrof_batches * config.lfw_batch_size)
    dataset = create_input_pipeline(image_list[:nrof_images], label_list[:nrof_images],
                                    FIXED_STANDARDIZATION * config.use_fixed_image_standardization, config.image_size,
                                    config.lfw_batch_size, unreadable=UnreadableImages())
    totals = {'loss': [], 'xent_loss': [], 'accuracy': []}
    for images, labels in dataset:
        for key, value in validate(images, labels).items():
            totals[key].append(float(value))
    means = {key: float(np.mean(values)) for key, values in totals.items()}
    index = (epoch - 1) // config.validate_every_n_epochs
    for key, value in means.items():
        run.stats[f'val_{key}'][index] = value
    run.summaries.scalars({f'val/{key}': value for key, value in means.items()}, run.global_step)
    log.info('Validation Epoch: %d\tLoss %2.3f\tXent %2.3f\tAccuracy %2.3f'
          % (epoch, means['loss'], means['xent_loss'], means['accuracy']))


def train_softmax(config, script_path):
    """train_softmax.py: validates `config` (a SoftmaxConfig), trains, exports; returns the model folder."""
    config.validate()
    train_set, val_set = training_set(config)
    image_list, label_list = get_image_paths_and_labels(train_set)
    validation_images = get_image_paths_and_labels(val_set)
    nrof_classes = len(train_set)
    modules = softmax_modules(nrof_classes, config.embedding_size, config.weight_decay, config.center_loss_alfa,
                              config.loss, config.margin_s, config.margin_m)
    run = start_run(config, script_path, modules, STATS, stat_rows(config))
    log.info(f'Number of classes in training set: {nrof_classes}')
    log.info(f'Number of examples in training set: {len(image_list)}')
    log.info(f'Number of classes in validation set: {len(val_set)}')
    log.info(f'Number of examples in validation set: {len(validation_images[0])}')
    plan = SoftmaxPlan(run, config, image_list, label_list, validation_images)
    log.info('Running training')
    return train(run, plan)
