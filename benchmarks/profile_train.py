"""Where a train_softmax.py step's time goes: a TF profiler trace of a few steps, summed by kind of work.

    python benchmarks/profile_train.py --data_dir ALIGNED_160 --pretrained_model ../shared/models/20170512-110547 \
        --precisions float32 bfloat16 --steps 3

Convolutions include the 1x1 layers that a training pass on the CPU runs as matrix products. The step is
bench_train.py's (Inception-ResNet-v1, 160 px, softmax head, centre loss, prelogits norm, weight
decay, ADAGRAD, EMA, fed by the training tf.data stream). For each precision it prints:
- the wall time of a step split by subtraction, medians of --steps on one batch: the forward pass in training
  mode, + the loss and the gradients (the backward pass), + the updates (centres, optimizer, EMA, step);
- the trace of --steps steps (tf.profiler), every op's time on TensorFlow's compute threads summed by kind:
  forward and backward convolutions, BatchNorm forward and backward, casts, weight decay, the optimizer,
  the EMA, other backward and forward ops, the loss head and the rest; and the input pipeline's own
  threads (decode, augment) beside them. Op times overlap on 2 threads, so a share is of the summed op time.
--trace_dir keeps the trace for TensorBoard's profile plugin. --before profiles the step as it was before the
training-speed work instead (bench_train.py's step_before_the_speed_work and the element-wise updates): the
README's "before" columns.
"""
import argparse
import collections
import contextlib
import glob
import os
import statistics
import sys
import tempfile
import time

import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src'))

from bench_train import build_trainer, cpu_summary, step_before_the_speed_work  # noqa: E402
from facenet_tf2.dataset import get_dataset, get_image_paths_and_labels  # noqa: E402
from facenet_tf2.pipeline import RANDOM_FLIP  # noqa: E402
from facenet_tf2.training.data import training_batches  # noqa: E402
from facenet_tf2.training.softmax import softmax_loss  # noqa: E402
from facenet_tf2.training.startup import pretrained_weights  # noqa: E402

KINDS = ('conv forward', 'conv backward', 'batch norm forward', 'batch norm backward', 'casts', 'weight decay',
         'optimizer', 'EMA', 'other backward', 'other forward', 'loss head, centres, metrics')


def kind_of(name, op_type, optimizer_scope, network_scope):
    """The kind of work of the op `name` of type `op_type` (see KINDS)."""
    if 'ExponentialMovingAverage' in name:
        return 'EMA'
    if name.split('/')[0] == optimizer_scope:
        return 'optimizer'
    if 'weight_decay' in name:
        return 'weight decay'
    if op_type == 'Cast':
        return 'casts'
    if 'patch_filter_gradient' in name.split('/')[0]:  # nets.layers.patch_gradient_conv2d's gradient
        return 'conv backward'
    if 'Conv2D' in op_type or ('MatMul' in op_type and network_scope in name):  # 1x1 layers as matrix products
        backward = 'Backprop' in op_type or name.startswith('gradient_tape')
        return 'conv backward' if backward else 'conv forward'
    if 'BatchNorm' in op_type:
        return 'batch norm backward' if 'Grad' in op_type else 'batch norm forward'
    if name.startswith('gradient_tape'):
        return 'other backward'
    if name.split('/')[0].startswith(network_scope):
        return 'other forward'
    return 'loss head, centres, metrics'


def read_trace(trace_dir, optimizer_scope, network_scope):
    """({kind: summed op seconds on the compute threads}, input pipeline thread seconds) of the trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=import-outside-toplevel
    path = sorted(glob.glob(os.path.join(trace_dir, '**', '*.xplane.pb'), recursive=True))[-1]
    space = xplane_pb2.XSpace()
    with open(path, 'rb') as file:
        space.ParseFromString(file.read())
    host = next(plane for plane in space.planes if plane.name == '/host:CPU')
    kinds, pipeline = collections.Counter(), 0.0
    for line in host.lines:
        for event in line.events:
            label = host.event_metadata[event.metadata_id].name
            if ':' not in label or label.startswith('ExecutorState'):
                continue
            name, op_type = label.rsplit(':', 1)
            seconds = event.duration_ps * 1e-12
            if line.name.startswith('tf_Compute'):
                kinds[kind_of(name, op_type, optimizer_scope, network_scope)] += seconds
            elif line.name.startswith('tf_data_private_threadpool'):
                pipeline += seconds
    return kinds, pipeline


def split_step(trainer, step, batch, steps):
    """Medians of the forward pass, forward + backward, and the whole step on `batch`, in seconds."""
    images, labels = batch[0], batch[1]
    loss_fn = softmax_loss(1.0, 5e-4, 0.01)

    @tf.function
    def forward():
        return tf.reduce_sum(trainer.network(images, training=True))

    @tf.function
    def backward():
        with tf.GradientTape() as tape:
            loss, _, _ = loss_fn(trainer, (images, labels), 32.0)
            loss += tf.add_n([tf.cast(t, tf.float32) for m in trainer.trained_modules() for t in m.losses])
        return tf.add_n([tf.reduce_sum(g) for g in tape.gradient(loss, trainer.network.trainable_variables)])

    times = {}
    for name, function in (('forward', forward), ('forward + backward', backward),
                           ('whole step', lambda: step(batch, len(labels))['loss'])):
        float(function())
        samples = []
        for _ in range(steps):
            start = time.perf_counter()
            float(function())
            samples.append(time.perf_counter() - start)
        times[name] = statistics.median(samples)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data_dir', required=True)
    parser.add_argument('--pretrained_model')
    parser.add_argument('--batch_size', type=int, default=32)
    parser.add_argument('--image_size', type=int, default=160)
    parser.add_argument('--steps', type=int, default=3)
    parser.add_argument('--precisions', nargs='+', default=['float32', 'bfloat16'], choices=['float32', 'bfloat16'])
    parser.add_argument('--before', action='store_true', help='the step before the training-speed work')
    parser.add_argument('--trace_dir', help='keep the traces here (default: a temporary folder)')
    args = parser.parse_args(argv)

    print(cpu_summary())
    dataset = get_dataset(args.data_dir)
    image_paths, labels = get_image_paths_and_labels(dataset)
    weights = pretrained_weights(args.pretrained_model) if args.pretrained_model else None
    for precision in args.precisions:
        with step_before_the_speed_work() if args.before else contextlib.nullcontext():
            profile(args, dataset, image_paths, labels, weights, precision)


def profile(args, dataset, image_paths, labels, weights, precision):
    """Times and traces the step of one precision (see the module docstring)."""
    trainer = build_trainer(len(dataset), args.image_size, weights, precision, fused=not args.before)
    step = trainer.train_step(softmax_loss(1.0, 5e-4, 0.01))
    batches = iter(training_batches(image_paths, labels, RANDOM_FLIP, args.image_size, args.batch_size, seed=1))
    times = split_step(trainer, step, next(batches), args.steps)
    print(f'\n== {precision}, batch {args.batch_size}: wall time per step (medians of {args.steps})')
    previous = 0.0
    for name, seconds in times.items():
        print(f'  {name:20s} {seconds:7.3f} s  (+{seconds - previous:.3f})')
        previous = seconds
    trace_dir = os.path.join(args.trace_dir or tempfile.mkdtemp(), precision)
    for _ in range(2):
        float(step(next(batches), args.batch_size)['loss'])
    tf.profiler.experimental.start(trace_dir)
    start = time.perf_counter()
    for _ in range(args.steps):
        float(step(next(batches), args.batch_size)['loss'])
    wall = time.perf_counter() - start
    tf.profiler.experimental.stop()
    optimizer = getattr(trainer.optimizer, 'inner_optimizer', trainer.optimizer)
    kinds, pipeline = read_trace(trace_dir, optimizer.name, trainer.network.name)
    total = sum(kinds.values())
    print(f'  traced {args.steps} steps in {wall:.2f} s; op time on the compute threads {total:.2f} s '
          f'({total / wall:.2f} threads busy); input pipeline threads {pipeline:.2f} s')
    print(f'  {"kind":28s} {"ms/step":>8s} {"share":>6s}')
    for kind in KINDS:
        print(f'  {kind:28s} {1000 * kinds[kind] / args.steps:8.1f} {100 * kinds[kind] / total:5.1f}%')


if __name__ == '__main__':
    main()
