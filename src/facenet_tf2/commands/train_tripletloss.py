"""Training a face recognizer with TensorFlow based on the FaceNet paper
FaceNet: A Unified Embedding for Face Recognition and Clustering: http://arxiv.org/abs/1503.03832

The original's train_tripletloss.py on the TF2 training core (facenet_tf2/training): same flags,
defaults and outputs. The default --triplet_strategy vggface is the original's algorithm (sample
people, embed them in training mode, one random margin-violating negative per anchor-positive
pair, train on those triplets); batch_hard, batch_semihard and batch_all mine P x K batches
online. Example, the original's command line:

    python src/train_tripletloss.py --logs_base_dir ~/logs/facenet/ --models_base_dir ~/models/facenet/ \\
        --data_dir ~/datasets/casia/casia_maxpy_mtcnnalign_182_160 --image_size 160 \\
        --model_def models.inception_resnet_v1 --lfw_dir ~/datasets/lfw/lfw_mtcnnalign_160 \\
        --optimizer RMSPROP --learning_rate 0.01 --weight_decay 1e-4 --max_nrof_epochs 500
"""
import time

import numpy as np

from facenet_tf2.cli import run_script
from facenet_tf2.dataset import require_dataset
from facenet_tf2.pipeline import RANDOM_CROP, RANDOM_FLIP, UnreadableImages
from facenet_tf2.training.options import add_common_arguments, check_common_arguments, parser_for
from facenet_tf2.errors import TrainingInputError
from facenet_tf2.training.startup import start_training
from facenet_tf2.training.triplet_training import (SampleEmbedder, nrof_triplet_batches, offline_triplet_loss,
                                                   online_triplet_loss, round_seed, triplet_batches)
from facenet_tf2.training.triplets import ONLINE_STRATEGIES, pk_classes, pk_image_batches, sample_people, \
    select_triplet_indices

STRATEGIES = ['vggface'] + sorted(ONLINE_STRATEGIES)


def check_arguments(args):
    check_common_arguments(args)
    if args.images_per_person < 2:
        raise TrainingInputError(f'--images_per_person {args.images_per_person}: a triplet needs 2 images of a person; '
                                 'use 2 or more')
    if args.triplet_strategy == 'vggface':
        if args.batch_size % 3:
            raise TrainingInputError(f'--batch_size {args.batch_size} is not a multiple of 3: a batch holds whole '
                                     f'triplets (anchor, positive, negative); use e.g. {3 * max(1, args.batch_size // 3)}')
        if args.people_per_batch < 2:
            raise TrainingInputError(f'--people_per_batch {args.people_per_batch}: negatives come from other people; '
                                     'use 2 or more')
        if args.people_per_batch * args.images_per_person < args.batch_size:
            raise TrainingInputError(f'--people_per_batch {args.people_per_batch} x --images_per_person '
                                     f'{args.images_per_person} = {args.people_per_batch * args.images_per_person} '
                                     f'images per sample, fewer than one --batch_size {args.batch_size}; sample more '
                                     'or lower --batch_size')
    else:
        if args.batch_size % args.images_per_person or args.batch_size // args.images_per_person < 2:
            raise TrainingInputError(f'--triplet_strategy {args.triplet_strategy} trains on batches of P people x K '
                                     f'images with K = --images_per_person {args.images_per_person}: --batch_size '
                                     f'{args.batch_size} must be a multiple of it holding 2 or more people; use e.g. '
                                     '--images_per_person 3 with --batch_size 90')


def training_set(args):
    """The identities of --data_dir, refusing a set where triplets cannot be formed."""
    dataset = require_dataset(args.data_dir)
    usable = len(pk_classes(dataset))
    needed = 2 if args.triplet_strategy == 'vggface' else args.batch_size // args.images_per_person
    if usable < needed:
        raise TrainingInputError(f'--data_dir {args.data_dir}: {usable} people with 2 or more images, and '
                                 f'--triplet_strategy {args.triplet_strategy} needs {needed}; add identities with '
                                 'several images each')
    return dataset


def stat_shapes(args):
    """The original's stat.h5 keys that apply, per step and per epoch. A round of the original
    trains on all its triplets, so an epoch can run past epoch_size steps by up to one round."""
    nrof_pairs = args.people_per_batch * args.images_per_person * (args.images_per_person - 1) // 2
    round_steps = nrof_triplet_batches(nrof_pairs, args.batch_size) if args.triplet_strategy == 'vggface' else 0
    nrof_steps = args.max_nrof_epochs * (args.epoch_size + round_steps)
    shapes = {key: (nrof_steps,) for key in ('loss', 'triplet_loss', 'fraction_active')}
    shapes.update({key: (args.max_nrof_epochs,) for key in ('learning_rate', 'time_train', 'time_select',
                                                            'lfw_accuracy', 'lfw_valrate', 'time_evaluate')})
    return shapes


def record_step(run, results, epoch, batch_number, args):
    step = int(run.trainer.global_step.numpy())
    stats = run.stats.arrays
    for key in ('loss', 'triplet_loss', 'fraction_active'):
        stats[key][step - 1] = results[key]
    stats['learning_rate'][epoch - 1] = results['learning_rate']
    print('Epoch: [%d][%d/%d]\tTime %.3f\tLoss %2.3f\tTriplet %2.3f\tActive %.3f\tLr %2.5f' %
          (epoch, batch_number + 1, args.epoch_size, results['duration'], results['loss'], results['triplet_loss'],
           results['fraction_active'], results['learning_rate']), flush=True)
    return results['duration']


def train_vggface(args, session, train_set, control, unreadable):
    """The original's epochs: sampling rounds until epoch_size batches have run; session.position
    counts the rounds done."""
    run, trainer = session.run, session.trainer
    replicas = trainer.strategy.num_replicas_in_sync
    if args.batch_size % (3 * replicas):
        raise TrainingInputError(f'--batch_size {args.batch_size} must split into whole triplets over {replicas} '
                                 f'replicas: use a multiple of {3 * replicas}')
    embedder = SampleEmbedder(trainer, args.image_size, args.batch_size, control, unreadable)
    step_fn = None
    position, empty_rounds = session.position, 0
    for epoch in session.epochs():
        batch_number, train_seconds, select_seconds = 0, 0.0, 0.0
        while batch_number < args.epoch_size:
            rng = np.random.default_rng([args.seed, position])
            image_paths, nrof_images_per_class = sample_people(train_set, args.people_per_batch,
                                                               args.images_per_person, rng)
            print('Running forward pass on sampled images: ', end='', flush=True)
            start = time.time()
            embeddings = embedder(image_paths, args.embedding_size, round_seed(args.seed, position, 0))
            print('%.3f' % (time.time() - start))
            print('Selecting suitable triplets for training')
            triplets, nrof_pairs = select_triplet_indices(embeddings, nrof_images_per_class, args.people_per_batch,
                                                          args.alpha, rng)
            selection_time = time.time() - start
            select_seconds += selection_time
            print('(nrof_random_negs, nrof_triplets) = (%d, %d): time=%.3f seconds' %
                  (nrof_pairs, len(triplets), selection_time))
            step = int(trainer.global_step.numpy())
            run.summaries.scalars({'triplets/nrof_selected': len(triplets), 'triplets/nrof_pairs': nrof_pairs,
                                   'time/selection': selection_time}, step)
            if not len(triplets):
                # The original looped here for ever; a round without a triplet counts as one batch.
                empty_rounds += 1
                batch_number += 1
                print(f'WARNING: no triplet violates the margin alpha {args.alpha} in this sample (round '
                      f'{position}, {empty_rounds} such round(s) so far): nothing to train on, skipped')
                position += 1
                continue
            labels = np.repeat(np.arange(len(nrof_images_per_class)), nrof_images_per_class)
            distributed = trainer.strategy.experimental_distribute_dataset(triplet_batches(
                image_paths, labels, triplets, control, args.image_size, args.batch_size,
                round_seed(args.seed, position, 1)))
            if step_fn is None:  # traced once for every round's batches, the smaller last ones too
                step_fn = trainer.train_step(offline_triplet_loss(args.alpha), input_spec=distributed.element_spec)
            batches = iter(distributed)
            nrof_examples = 3 * len(triplets)
            for i in range(nrof_triplet_batches(len(triplets), args.batch_size)):
                results = run.step(step_fn, batches, min(args.batch_size, nrof_examples - i * args.batch_size), epoch)
                train_seconds += record_step(run, results, epoch, batch_number, args)
                batch_number += 1
            position += 1
        finish_epoch(run, epoch, position, train_seconds, select_seconds, unreadable)
    if empty_rounds:
        print(f'{empty_rounds} sampling round(s) had no triplet violating the margin and trained nothing')
    return step_fn


def train_online(args, session, train_set, control, unreadable):
    """Epochs of epoch_size P x K batches mined inside the step; session.position counts batches."""
    run, trainer = session.run, session.trainer
    people = args.batch_size // args.images_per_person
    dataset = pk_image_batches(train_set, people, args.images_per_person, args.image_size, control, args.seed,
                               start=session.position, unreadable=unreadable)
    distributed = trainer.strategy.experimental_distribute_dataset(dataset)
    batches = iter(distributed)
    # Batches shrink where unreadable files are left out: one trace for every batch size.
    step_fn = trainer.train_step(online_triplet_loss(args.triplet_strategy, args.alpha),
                                 input_spec=distributed.element_spec)
    position = session.position
    for epoch in session.epochs():
        train_seconds = 0.0
        for batch_number in range(args.epoch_size):
            results = run.step(step_fn, batches, args.batch_size, epoch)
            train_seconds += record_step(run, results, epoch, batch_number, args)
            position += 1
        finish_epoch(run, epoch, position, train_seconds, 0.0, unreadable)
    return step_fn


def finish_epoch(run, epoch, position, train_seconds, select_seconds, unreadable):
    stats = run.stats.arrays
    stats['time_train'][epoch - 1] = train_seconds
    stats['time_select'][epoch - 1] = select_seconds
    step = int(run.trainer.global_step.numpy())
    run.summaries.scalars({'time/total': train_seconds, 'time/select': select_seconds,
                           'time/input_wait': run.input_wait_seconds}, step)
    if unreadable:
        print(f'{len(unreadable)} unreadable image(s) skipped so far, e.g. {unreadable.failures[0][0]}')
    run.end_epoch(epoch, position)


def main(args):
    check_arguments(args)
    train_set = training_set(args)
    session = start_training(args, __file__, {}, stat_shapes(args), lfw_batch_size=args.batch_size)
    control = RANDOM_CROP * args.random_crop + RANDOM_FLIP * args.random_flip
    unreadable = UnreadableImages()
    train = train_vggface if args.triplet_strategy == 'vggface' else train_online
    step_fn = train(args, session, train_set, control, unreadable)
    if step_fn is not None:
        print(f'The train step was traced {step_fn.tracing_count()} time(s)')
    session.run.finish()
    return session.run.folders.model_dir


def parse_arguments(argv):
    parser = parser_for(__doc__.split('\n\n')[0])
    add_common_arguments(parser, batch_size=90, learning_rate_schedule_file='data/learning_rate_schedule.txt')
    parser.set_defaults(model_def='models.inception_resnet_v2')  # the original triplet script's default
    add = parser.add_argument
    add('--people_per_batch', type=int, default=45, help='Number of people per batch.')
    add('--images_per_person', type=int, default=40, help='Number of images per person.')
    add('--alpha', type=float, default=0.2, help='Positive to negative triplet distance margin.')
    add('--triplet_strategy', choices=STRATEGIES, default='vggface',
        help='vggface: the original (sampled people, one random margin-violating negative per pair); batch_hard, '
             'batch_semihard, batch_all: online mining of P x K batches, K = --images_per_person, '
             'P = --batch_size / K.')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
