"""Training a face recognizer with TensorFlow using softmax cross entropy loss (or ArcFace/CosFace).

The original's train_softmax.py on the TF2 training core (facenet_tf2/training): same flags,
defaults, outputs and numbers (benchmarks/check_train_step.py replays the original's own training
steps). Example, the original's VGGFace2 recipe:

    python src/train_softmax.py --logs_base_dir ~/logs/facenet/ --models_base_dir ~/models/facenet/ \\
        --data_dir ~/datasets/vggface2/vggface2_train_182/ --image_size 160 \\
        --model_def models.inception_resnet_v1 --lfw_dir ~/datasets/lfw/lfw_mtcnnalign_160/ \\
        --optimizer ADAM --learning_rate -1 --max_nrof_epochs 150 --keep_probability 0.8 --random_crop \\
        --random_flip --use_fixed_image_standardization \\
        --learning_rate_schedule_file data/learning_rate_schedule_classifier_vggface2.txt \\
        --weight_decay 5e-4 --embedding_size 512 --lfw_distance_metric 1 --lfw_use_flipped_images \\
        --lfw_subtract_mean --validation_set_split_ratio 0.05 --validate_every_n_epochs 5 \\
        --prelogits_norm_loss_factor 5e-4
"""
import math
import os

import numpy as np

from facenet_tf2.dataset import get_image_paths_and_labels, require_dataset, split_dataset
from facenet_tf2.pipeline import (FIXED_STANDARDIZATION, RANDOM_CROP, RANDOM_FLIP, RANDOM_ROTATE, UnreadableImages,
                                  create_input_pipeline)
from facenet_tf2.training import losses
from facenet_tf2.training.filtering import filter_dataset
from facenet_tf2.cli import run_script
from facenet_tf2.training.options import add_common_arguments, check_common_arguments, parser_for
from facenet_tf2.errors import TrainingInputError
from facenet_tf2.training.softmax import PRELOGITS_HIST_BINS, softmax_loss, softmax_modules, softmax_validation
from facenet_tf2.training.startup import start_training


def training_set(args):
    """(train_set, val_set) as the original made them, refusing what cannot train."""
    dataset = require_dataset(args.data_dir, 'training data folder')
    if args.filter_filename:
        dataset = filter_dataset(dataset, os.path.expanduser(args.filter_filename), args.filter_percentile,
                                 args.filter_min_nrof_images_per_class)
    empty = [cls.name for cls in dataset if not cls.image_paths]
    if empty:
        raise TrainingInputError(f'--data_dir {args.data_dir}: {len(empty)} class(es) without images'
                                 f'{" after filtering" if args.filter_filename else ""} (e.g. {empty[0]}); remove '
                                 'them or lower --filter_min_nrof_images_per_class')
    if len(dataset) < 2:
        raise TrainingInputError(f'--data_dir {args.data_dir}: {len(dataset)} class(es); a classifier needs at least 2 '
                                 'identity folders')
    if args.validation_set_split_ratio > 0.0:
        np.random.seed(args.seed)
        train_set, val_set = split_dataset(dataset, args.validation_set_split_ratio,
                                           args.min_nrof_val_images_per_class, 'SPLIT_IMAGES')
        if len(train_set) < 2:
            raise TrainingInputError(f'--validation_set_split_ratio {args.validation_set_split_ratio}: only '
                                     f'{len(train_set)} class(es) keep enough images; lower it or '
                                     '--min_nrof_val_images_per_class')
        return train_set, val_set
    return dataset, []


def check_arguments(args):
    check_common_arguments(args)
    if args.filter_filename and not os.path.isfile(os.path.expanduser(args.filter_filename)):
        raise TrainingInputError(f'--filter_filename {args.filter_filename}: no such file; write it with '
                                 'calculate_filtering_metrics.py or leave the option out')
    if args.loss == 'softmax' and (args.margin_s is not None or args.margin_m is not None):
        raise TrainingInputError('--margin_s and --margin_m apply to --loss arcface or cosface, not softmax')


def main(args):
    check_arguments(args)
    train_set, val_set = training_set(args)
    image_list, label_list = get_image_paths_and_labels(train_set)
    val_image_list, val_label_list = get_image_paths_and_labels(val_set)
    nrof_classes = len(train_set)
    loss_parameters = (args.prelogits_norm_p, args.prelogits_norm_loss_factor, args.center_loss_factor)
    session = start_training(
        args, __file__, softmax_modules(nrof_classes, args.embedding_size, args.weight_decay, args.center_loss_alfa,
                                        args.loss, args.margin_s, args.margin_m),
        stat_shapes(args), lfw_batch_size=args.lfw_batch_size)
    run, trainer = session.run, session.trainer
    print(f'Number of classes in training set: {nrof_classes}')
    print(f'Number of examples in training set: {len(image_list)}')
    print(f'Number of classes in validation set: {len(val_set)}')
    print(f'Number of examples in validation set: {len(val_image_list)}')

    control = (RANDOM_ROTATE * args.random_rotate + RANDOM_CROP * args.random_crop + RANDOM_FLIP * args.random_flip
               + FIXED_STANDARDIZATION * args.use_fixed_image_standardization)
    unreadable = UnreadableImages()
    batches = session.batches(image_list, label_list, control, unreadable)
    step_fn = trainer.train_step(softmax_loss(*loss_parameters, prelogits_hist_max=args.prelogits_hist_max))
    validate = softmax_validation(trainer, *loss_parameters) if val_image_list else None
    stats = run.stats.arrays

    print('Running training')
    position = session.position
    for epoch in session.epochs():
        train_seconds = 0.0
        for batch_number in range(args.epoch_size):
            results = run.step(step_fn, batches, args.batch_size, epoch)
            step = int(trainer.global_step.numpy())
            position = max(position, int(results['position_max']))
            reg_loss = (results['weight_decay'] + args.prelogits_norm_loss_factor * results['prelogits_norm']
                        + args.center_loss_factor * results['center_loss'])
            for key, value in (('loss', results['loss']), ('center_loss', results['center_loss']),
                               ('reg_loss', reg_loss), ('xent_loss', results['xent_loss']),
                               ('prelogits_norm', results['prelogits_norm']), ('accuracy', results['accuracy'])):
                stats[key][step - 1] = value
            stats['learning_rate'][epoch - 1] = results['learning_rate']
            stats['prelogits_hist'][epoch - 1, :] += results['prelogits_hist']
            if batch_number % 100 == 0:
                run.summaries.histogram_counts('prelogits', results['prelogits_hist'], (0.0, args.prelogits_hist_max),
                                               step)
            train_seconds += results['duration']
            print('Epoch: [%d][%d/%d]\tTime %.3f\tLoss %2.3f\tXent %2.3f\tRegLoss %2.3f\tAccuracy %2.3f\tLr %2.5f\tCl %2.3f'
                  % (epoch, batch_number + 1, args.epoch_size, results['duration'], results['loss'],
                     results['xent_loss'], reg_loss, results['accuracy'], results['learning_rate'],
                     results['center_loss']), flush=True)
        stats['time_train'][epoch - 1] = train_seconds
        run.summaries.scalars({'time/total': train_seconds, 'time/input_wait': run.input_wait_seconds}, step)
        if unreadable:
            print(f'{len(unreadable)} unreadable image(s) skipped so far, e.g. {unreadable.failures[0][0]}')
        due = validate is not None and ((epoch - 1) % args.validate_every_n_epochs == args.validate_every_n_epochs - 1
                                        or epoch == args.max_nrof_epochs)
        run.end_epoch(epoch, position, (lambda e=epoch: run_validation(args, validate, val_image_list,
                                                                        val_label_list, stats, e, run))
                      if due else None)
    run.finish()
    return run.folders.model_dir


def stat_shapes(args):
    nrof_steps = args.max_nrof_epochs * args.epoch_size
    nrof_val_samples = int(math.ceil(args.max_nrof_epochs / args.validate_every_n_epochs))
    shapes = {key: (nrof_steps,) for key in ('loss', 'center_loss', 'reg_loss', 'xent_loss', 'prelogits_norm',
                                             'accuracy')}
    shapes.update({key: (nrof_val_samples,) for key in ('val_loss', 'val_xent_loss', 'val_accuracy')})
    shapes.update({key: (args.max_nrof_epochs,) for key in ('lfw_accuracy', 'lfw_valrate', 'learning_rate',
                                                            'time_train', 'time_validate', 'time_evaluate')})
    shapes['prelogits_hist'] = (args.max_nrof_epochs, PRELOGITS_HIST_BINS)
    return shapes


def run_validation(args, validate, image_list, label_list, stats, epoch, run):
    """The original's validation pass: the held-out images in inference mode, whole batches of
    --lfw_batch_size as the original, fixed standardisation if the training used it."""
    print('Running forward pass on validation set')
    nrof_batches = max(1, len(label_list) // args.lfw_batch_size)
    nrof_images = min(len(label_list), nrof_batches * args.lfw_batch_size)
    dataset = create_input_pipeline(image_list[:nrof_images], label_list[:nrof_images],
                                    FIXED_STANDARDIZATION * args.use_fixed_image_standardization, args.image_size,
                                    args.lfw_batch_size, unreadable=UnreadableImages())
    totals = {'loss': [], 'xent_loss': [], 'accuracy': []}
    for images, labels in dataset:
        for key, value in validate(images, labels).items():
            totals[key].append(float(value))
    means = {key: float(np.mean(values)) for key, values in totals.items()}
    index = (epoch - 1) // args.validate_every_n_epochs
    stats['val_loss'][index], stats['val_xent_loss'][index], stats['val_accuracy'][index] = \
        means['loss'], means['xent_loss'], means['accuracy']
    step = int(run.trainer.global_step.numpy())
    run.summaries.scalars({'val/loss': means['loss'], 'val/xent_loss': means['xent_loss'],
                           'val/accuracy': means['accuracy']}, step)
    print('Validation Epoch: %d\tLoss %2.3f\tXent %2.3f\tAccuracy %2.3f'
          % (epoch, means['loss'], means['xent_loss'], means['accuracy']))


def parse_arguments(argv):
    parser = parser_for(__doc__.split('\n\n')[0])
    add_common_arguments(parser, batch_size=90, learning_rate_schedule_file='data/learning_rate_schedule.txt')
    add = parser.add_argument
    add('--random_rotate', action='store_true', help='Performs random rotations of training images.')
    add('--use_fixed_image_standardization', action='store_true', help='Performs fixed standardization of images.')
    add('--center_loss_factor', type=float, default=0.0, help='Center loss factor.')
    add('--center_loss_alfa', type=float, default=0.95, help='Center update rate for center loss.')
    add('--prelogits_norm_loss_factor', type=float, default=0.0,
        help='Loss based on the norm of the activations in the prelogits layer.')
    add('--prelogits_norm_p', type=float, default=1.0, help='Norm to use for prelogits norm loss.')
    add('--prelogits_hist_max', type=float, default=10.0, help='The max value for the prelogits histogram.')
    add('--nrof_preprocess_threads', type=int, default=4,
        help='Number of preprocessing (data loading and augmentation) threads (tf.data runs as many as there are '
             'cores; kept for the original command lines).')
    add('--log_histograms', action='store_true', help='Enables logging of weight/bias histograms in tensorboard.')
    add('--filter_filename', type=str, default='', help='File containing image data used for dataset filtering.')
    add('--filter_percentile', type=float, default=100.0,
        help='Keep only the percentile images closed to its class center.')
    add('--filter_min_nrof_images_per_class', type=int, default=0,
        help='Keep only the classes with this number of examples or more.')
    add('--validate_every_n_epochs', type=int, default=5, help='Number of epoch between validation.')
    add('--validation_set_split_ratio', type=float, default=0.0,
        help='The ratio of the total dataset to use for validation.')
    add('--min_nrof_val_images_per_class', type=float, default=0,
        help='Classes with fewer images will be removed from the validation set.')
    add('--lfw_batch_size', type=int, default=100, help='Number of images to process in a batch in the LFW test set.')
    add('--lfw_distance_metric', type=int, default=0, choices=[0, 1],
        help='Type of distance metric to use. 0: Euclidian, 1:Cosine similarity distance.')
    add('--lfw_use_flipped_images', action='store_true',
        help='Concatenates embeddings for the image and its horizontally flipped counterpart.')
    add('--lfw_subtract_mean', action='store_true', help='Subtract feature mean before calculating distance.')
    add('--loss', choices=losses.LOSSES, default='softmax',
        help='The classifier head: the original softmax, or ArcFace / CosFace margins on L2-normalised features '
             'and weights.')
    add('--margin_s', type=float, default=None, help='Scale s of the margin loss (default 64).')
    add('--margin_m', type=float, default=None, help='Margin m (default 0.5 for arcface, 0.35 for cosface).')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
