"""Training throughput of the training core against inference of the same network, in one run.

    python benchmarks/bench_train.py --data_dir ALIGNED_160 --pretrained_model ../shared/models/20170512-110547

Contenders, interleaved round by round (the machine may be shared; the figures are medians):
- train float32: one train_softmax step of Inception-ResNet-v1 at 160 px (softmax head, centre loss,
  prelogits norm, weight decay, ADAGRAD, EMA), batch --batch_size, fed by the training tf.data stream
  from --data_dir (decode, random crop/flip): images/s, and the time the step waited for its batch;
- train bfloat16: the same step under Keras mixed precision (float32 master weights); --precisions picks
  them (float16, with loss scaling, on a GPU);
- with --before, the float32 and bfloat16 steps as they were before the training-speed work
  (step_before_the_speed_work), so that speed-ups are ratios measured in one run;
- inference: the embedding function facenet.load_model runs for the same network (BatchNorm folded),
  on batches of the same size, images/s.
It prints the ratio of a training image's time to an inference image's (the goal: at most 3.5),
that the train step traced once, the CPU model and flags, and, with --loss_curve N, the losses of N
float32 and N bfloat16 steps from the same weights on the same batches (means over windows, and the
float32 run's step-to-step noise against the bfloat16 run's distance from it), to show what
bfloat16 does to the loss curve.

With --triplet the contenders are inference and train_tripletloss.py's default loop instead: per
sampling round (--people_per_batch x --images_per_person images), the forward pass in training mode,
the triplet selection and the train steps on the selected triplets (at most --steps_per_round);
images/s of the whole round (sampled + trained images) and of the train steps, and the share of
the round spent in selection.

    python benchmarks/bench_train.py --data_dir ALIGNED_160 --pretrained_model MODEL --triplet --batch_size 30 \
        --people_per_batch 15 --images_per_person 8
"""
import argparse
import contextlib
import os
import platform
import statistics
import sys
import time

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src'))

from facenet_tf2.dataset import get_dataset, get_image_paths_and_labels  # noqa: E402
from facenet_tf2.devices import cpu_flags  # noqa: E402
from facenet_tf2.model_io import embedding_model_from_keras  # noqa: E402
from facenet_tf2.pipeline import RANDOM_CROP, RANDOM_FLIP, UnreadableImages  # noqa: E402
from facenet_tf2.training.core import Trainer  # noqa: E402
from facenet_tf2.training.data import training_batches  # noqa: E402
from facenet_tf2.training.softmax import softmax_loss, softmax_modules  # noqa: E402
from facenet_tf2.training.startup import pretrained_weights  # noqa: E402
from facenet_tf2.training.triplet_training import (SampleEmbedder, nrof_triplet_batches, offline_triplet_loss,  # noqa: E402
                                                   round_seed, triplet_batches)
from facenet_tf2.training.triplets import sample_people, select_triplet_indices  # noqa: E402
from models import inception_resnet_v1  # noqa: E402


def cpu_summary():
    """The CPU model and the instruction sets that decide float32 / bfloat16 / INT8 speed."""
    model = platform.processor() or 'unknown CPU'
    try:
        with open('/proc/cpuinfo', encoding='utf-8', errors='replace') as file:
            model = next((line.split(':', 1)[1].strip() for line in file if line.startswith('model name')), model)
    except OSError:
        pass
    flags = cpu_flags() or set()
    wanted = ('avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_bf16', 'amx_int8')
    return f'CPU: {model}, {os.cpu_count()} cores; flags: {" ".join(f for f in wanted if f in flags) or "none of"} ' \
           f'(of {", ".join(wanted)})'


@contextlib.contextmanager
def step_before_the_speed_work():
    """Rebuilds, in this process only, the train step as it was before the training-speed work
    (issue 18), so that the new step is timed against it in the same run: Keras' L2 weight decay
    (square, sum, multiply) instead of slim's L2Loss, BatchNorm on float32 copies of bfloat16
    activations, 1x1 layers as convolutions, every filter gradient by
    Conv2DBackpropFilter. With fused=False in build_trainer (element-wise optimizer and EMA) that is
    the whole old step. Active while the network is built and while the step is traced."""
    from facenet_tf2.nets import layers as net_layers  # pylint: disable=import-outside-toplevel
    from facenet_tf2.training import losses  # pylint: disable=import-outside-toplevel
    convolution = net_layers._TrainingConvolution
    saved = (net_layers.l2_regularizer, losses.l2_regularizer, convolution._runs_as_matmul,
             net_layers.SlimBatchNormalization.call, convolution._runs_with_patch_filter_gradient)
    batch_norm_call = saved[3]

    def keras_l2(weight_decay):
        return keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None

    def float32_batch_norm(self, inputs, training=None, mask=None):
        if training and inputs.dtype in (tf.bfloat16, tf.float16):
            inputs = tf.cast(inputs, tf.float32)
        return batch_norm_call(self, inputs, training=training, mask=mask)

    net_layers.l2_regularizer = losses.l2_regularizer = keras_l2
    convolution._runs_as_matmul = lambda self, training: False
    convolution._runs_with_patch_filter_gradient = lambda self, inputs, training: False
    net_layers.SlimBatchNormalization.call = float32_batch_norm
    try:
        yield
    finally:
        (net_layers.l2_regularizer, losses.l2_regularizer, convolution._runs_as_matmul,
         net_layers.SlimBatchNormalization.call, convolution._runs_with_patch_filter_gradient) = saved


def build_trainer(nrof_classes, image_size, weights, precision, fused=True):
    keras.utils.set_random_seed(666)
    keras.mixed_precision.set_global_policy({'bfloat16': 'mixed_bfloat16', 'float16': 'mixed_float16'}.get(
        precision, 'float32'))
    try:
        trainer = Trainer(tf.distribute.get_strategy(),
                          lambda: inception_resnet_v1.build_model(image_size=image_size, dropout_keep_prob=0.8,
                                                                  bottleneck_layer_size=128, weight_decay=5e-4),
                          softmax_modules(nrof_classes, 128, 5e-4, 0.95), optimizer='ADAGRAD', fused_updates=fused,
                          loss_scale=precision == 'float16')
    finally:
        keras.mixed_precision.set_global_policy('float32')
    trainer.build(128)
    if weights:
        trainer.load_network_weights(weights, 'pretrained')
    trainer.set_learning_rate(0.01)
    return trainer


class TrainContender:
    def __init__(self, name, trainer, image_paths, labels, args, context=contextlib.nullcontext):
        self.name, self.trainer, self.batch_size, self.context = name, trainer, args.batch_size, context
        self.step = trainer.train_step(softmax_loss(1.0, 5e-4, 0.01))
        self.batches = iter(training_batches(image_paths, labels, RANDOM_CROP * args.random_crop + RANDOM_FLIP,
                                             args.image_size, args.batch_size, seed=1))
        self.times, self.waits, self.losses = [], [], []

    def run(self, steps):
        for _ in range(steps):
            start = time.perf_counter()
            batch = next(self.batches)
            waited = time.perf_counter() - start
            with self.context():  # matters only while the step is traced, in the first run
                loss = float(self.step(batch, self.batch_size)['loss'])
            self.times.append(time.perf_counter() - start)
            self.waits.append(waited)
            self.losses.append(loss)


class TripletRoundContender:
    """Rounds of train_tripletloss.py's vggface loop: sample, embed in training mode, select, train."""

    def __init__(self, trainer, dataset, args):
        self.name, self.trainer, self.dataset, self.args = 'triplet round', trainer, dataset, args
        self.embedder = SampleEmbedder(trainer, args.image_size, args.batch_size, 0, UnreadableImages())
        self.step, self.round = None, 0
        self.times, self.records = [], []

    def run(self, steps):
        args, strategy = self.args, self.trainer.strategy
        rng = np.random.default_rng([1, self.round])
        start = time.perf_counter()
        image_paths, per_class = sample_people(self.dataset, args.people_per_batch, args.images_per_person, rng)
        embeddings = self.embedder(image_paths, 128, round_seed(1, self.round, 0))
        embedded = time.perf_counter()
        triplets, _ = select_triplet_indices(embeddings, per_class, args.people_per_batch, args.alpha, rng)
        selected = time.perf_counter()
        labels = np.repeat(np.arange(len(per_class)), per_class)
        distributed = strategy.experimental_distribute_dataset(triplet_batches(
            image_paths, labels, triplets, 0, args.image_size, args.batch_size, round_seed(1, self.round, 1)))
        if self.step is None:
            self.step = self.trainer.train_step(offline_triplet_loss(args.alpha), input_spec=distributed.element_spec)
        batches, trained = iter(distributed), 0
        for i in range(min(steps, nrof_triplet_batches(len(triplets), args.batch_size))):
            size = min(args.batch_size, 3 * len(triplets) - i * args.batch_size)
            float(self.step(next(batches), size)['loss'])
            trained += size
        end = time.perf_counter()
        self.round += 1
        self.times.append(end - start)
        self.records.append({'sampled': len(image_paths), 'trained': trained, 'forward': embedded - start,
                             'select': selected - embedded, 'train': end - selected})


class InferenceContender:
    def __init__(self, network, images):
        self.model, self.images, self.times = embedding_model_from_keras(network, 'bench'), images, []

    def run(self, steps):
        for _ in range(steps):
            start = time.perf_counter()
            np.asarray(self.model(self.images))
            self.times.append(time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data_dir', required=True, help='aligned faces, one folder per identity')
    parser.add_argument('--pretrained_model', help='start from these weights (any format load_model reads)')
    parser.add_argument('--batch_size', type=int, default=32)
    parser.add_argument('--image_size', type=int, default=160)
    parser.add_argument('--random_crop', action='store_true', help='the data is larger than image_size')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--steps_per_round', type=int, default=3)
    parser.add_argument('--loss_curve', type=int, default=0,
                        help='steps of float32 vs bfloat16 (or the last of --precisions) losses to print')
    parser.add_argument('--precisions', nargs='+', default=['float32', 'bfloat16'],
                        choices=['float32', 'bfloat16', 'float16'],
                        help='train contenders (float32 first: the inference contender runs its network; float16 '
                             'with loss scaling, GPU only)')
    parser.add_argument('--triplet', action='store_true', help="time train_tripletloss.py's loop (see above)")
    parser.add_argument('--before', action='store_true',
                        help='also time the float32 and bfloat16 steps as they were before the speed work (see '
                             'step_before_the_speed_work), the same-run baseline that ratios to the original carry over from')
    parser.add_argument('--people_per_batch', type=int, default=45)
    parser.add_argument('--images_per_person', type=int, default=40)
    parser.add_argument('--alpha', type=float, default=0.2)
    args = parser.parse_args(argv)

    dataset = get_dataset(args.data_dir)
    image_paths, labels = get_image_paths_and_labels(dataset)
    weights = pretrained_weights(args.pretrained_model) if args.pretrained_model else None
    if args.triplet:
        return triplet_benchmark(args, dataset, image_paths, labels, weights)
    print(cpu_summary())
    trainers = {precision: build_trainer(len(dataset), args.image_size, weights, precision)
                for precision in args.precisions}
    train = [TrainContender(f'train {p}', t, image_paths, labels, args) for p, t in trainers.items()]
    if args.before:
        for precision in reversed(args.precisions):
            with step_before_the_speed_work():
                trainer = build_trainer(len(dataset), args.image_size, weights, precision, fused=False)
            train.insert(0, TrainContender(f'{precision} before', trainer, image_paths, labels, args,
                                           step_before_the_speed_work))
    images = next(iter(training_batches(image_paths, labels, 0, args.image_size, args.batch_size, seed=2)))[0]
    inference = InferenceContender(next(iter(trainers.values())).network, images)
    for contender in train + [inference]:  # warm-up: tracing, first allocations
        contender.run(1)
        contender.times.clear()
        if hasattr(contender, 'losses'):
            contender.losses.clear()
            contender.waits.clear()
    for _ in range(args.rounds):
        for contender in train + [inference]:
            contender.run(args.steps_per_round)

    inference_rate = args.batch_size / statistics.median(inference.times)
    print(f'{"contender":18s} {"images/s":>9s} {"s/step":>8s} {"input wait/step":>16s} {"ratio to inference":>19s}')
    print(f'{"inference float32":18s} {inference_rate:9.1f} {statistics.median(inference.times):8.3f}')
    for contender in train:
        rate = args.batch_size / statistics.median(contender.times)
        print(f'{contender.name:18s} {rate:9.1f} {statistics.median(contender.times):8.3f} '
              f'{statistics.median(contender.waits):16.4f} {inference_rate / rate:19.2f}')
        print(f'  traced {contender.step.tracing_count()} time(s); input wait in total '
              f'{sum(contender.waits):.3f} s of {sum(contender.times):.1f} s')
    if args.before:
        before = statistics.median(train[0].times)
        print('speed-up over the float32 step before the speed work (same run): ' + ', '.join(
            f'{contender.name} {before / statistics.median(contender.times):.2f}x' for contender in train[1:]))
    if args.loss_curve:
        low = next((p for p in reversed(args.precisions) if p != 'float32'), 'bfloat16')
        curves = {}
        for precision in ('float32', low):
            contender = TrainContender(precision, build_trainer(len(dataset), args.image_size, weights, precision),
                                       image_paths, labels, args)
            contender.run(args.loss_curve)
            curves[precision] = np.array(contender.losses)
        float32, other = curves['float32'], curves[low]
        window = max(1, min(20, len(float32) // 10))
        print(f'steps        mean loss float32  mean loss {low:9s}   (windows of {window} steps)')
        for start in range(0, len(float32), window):
            print(f'{start + 1:4d}-{min(start + window, len(float32)):<4d}  {float32[start:start + window].mean():17.4f}  '
                  f'{other[start:start + window].mean():18.4f}')
        noise = np.median(np.abs(np.diff(float32))) if len(float32) > 1 else float('nan')
        deviation = np.median(np.abs(other - float32))
        print(f'step-to-step noise of float32 (median |loss[k] - loss[k-1]|): {noise:.4f}; {low} against float32 '
              f'at the same step, median |difference| {deviation:.4f} (within the noise: {deviation <= noise}), '
              f'largest relative difference {np.max(np.abs(other - float32) / np.abs(float32)):.2e}')


def triplet_benchmark(args, dataset, image_paths, labels, weights):
    trainer = build_trainer(len(dataset), args.image_size, weights, 'float32')
    images = next(iter(training_batches(image_paths, labels, 0, args.image_size, args.batch_size, seed=2)))[0]
    inference = InferenceContender(trainer.network, images)
    rounds = TripletRoundContender(trainer, dataset, args)
    for contender in (rounds, inference):  # warm-up: tracing, first allocations
        contender.run(1)
        contender.times.clear()
    rounds.records.clear()
    for _ in range(args.rounds):
        rounds.run(args.steps_per_round)
        inference.run(args.steps_per_round)
    inference_rate = args.batch_size / statistics.median(inference.times)
    records = rounds.records
    whole = [(r['sampled'] + r['trained']) / t for r, t in zip(records, rounds.times)]
    train = [r['trained'] / r['train'] for r in records if r['trained']]
    forward = [r['sampled'] / r['forward'] for r in records]
    select_share = sum(r['select'] for r in records) / sum(rounds.times)
    print(f'inference float32: {inference_rate:.1f} images/s (batch {args.batch_size})')
    print(f'triplet rounds of {args.people_per_batch} x {args.images_per_person} images, alpha {args.alpha}: '
          f'{statistics.median(whole):.1f} images/s for the whole round (sampled + trained images); forward pass in '
          f'training mode {statistics.median(forward):.1f} images/s; train steps '
          f'{statistics.median(train) if train else float("nan"):.1f} images/s '
          f'(ratio to inference {inference_rate / statistics.median(train) if train else float("nan"):.2f}); '
          f'selection {1000 * statistics.median(r["select"] for r in records):.1f} ms a round, '
          f'{100 * select_share:.2f}% of the time; triplets trained per round {[r["trained"] // 3 for r in records]}; '
          f'train step traced {rounds.step.tracing_count() if rounds.step else 0} time(s)')


if __name__ == '__main__':
    main()
