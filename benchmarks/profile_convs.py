"""The convolutions of a train_softmax.py step, one shape at a time: what a step costs at least on this CPU.

    python benchmarks/profile_convs.py --precision float32 \
        --data_dir ALIGNED_160 --pretrained_model ../shared/models/20170512-110547/20170512-110547.pb

Records every convolution Inception-ResNet-v1 runs at --image_size (input shape, kernel, stride, padding,
how many layers share it) by running the Keras network once, then times each shape alone at
--batch_size, medians of --repeats: the forward convolution, the gradient of its input and the gradient
of its filter (oneDNN, as the train step runs them; the first layer's input gradient is left out, the
step does not compute it), with the rate in GFLOP/s. What a training pass on the CPU runs instead
(facenet_tf2.nets.layers._TrainingConvolution) is timed too: 1x1 stride-1 shapes as matrix
products, and the stride-2 and small-output layers' filter gradient as patches times the output
gradient (patch_gradient_conv2d). The total takes, for each shape, what the step runs.

With --data_dir it also times the whole bench_train.py step (softmax head, centre loss, prelogits norm,
weight decay, ADAGRAD, EMA) on one batch of those faces, and prints the share of it that the
convolutions alone take: the rest is everything else a step does (BatchNorm, ReLU, sums, weight decay,
the updates, the loss head), and the convolutions' share bounds what removing that rest can gain.
"""
import argparse
import collections
import os
import statistics
import sys
import time
import types

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src'))

from bench_train import build_trainer, cpu_summary  # noqa: E402
from facenet_tf2.dataset import get_dataset, get_image_paths_and_labels  # noqa: E402
from facenet_tf2.nets.layers import _TrainingConvolution, patch_gradient_conv2d  # noqa: E402
from facenet_tf2.pipeline import RANDOM_FLIP  # noqa: E402
from facenet_tf2.training.data import training_batches  # noqa: E402
from facenet_tf2.training.softmax import softmax_loss  # noqa: E402
from facenet_tf2.training.startup import pretrained_weights  # noqa: E402
from models import inception_resnet_v1  # noqa: E402


def conv_shapes(image_size):
    """Counter of (input shape [H, W, C], kernel shape, strides, padding, whether a training pass takes
    its filter gradient as patches) over the network's Conv2D layers, in the order the network first runs them."""
    shapes = collections.Counter()
    call = keras.layers.Conv2D.call

    def recording_call(self, inputs, *args, **kwargs):
        patches = _TrainingConvolution._runs_with_patch_filter_gradient(
            types.SimpleNamespace(data_format=self.data_format, groups=self.groups,
                                  dilation_rate=self.dilation_rate, kernel_size=self.kernel_size,
                                  strides=self.strides, padding=self.padding), inputs, True)
        shapes[(tuple(inputs.shape[1:]), tuple(self.kernel.shape), tuple(self.strides), self.padding.upper(),
                patches)] += 1
        return call(self, inputs, *args, **kwargs)

    network = inception_resnet_v1.build_model(image_size=image_size, bottleneck_layer_size=128)
    keras.layers.Conv2D.call = recording_call
    try:
        network(np.zeros((1, image_size, image_size, 3), np.float32), training=False)
    finally:
        keras.layers.Conv2D.call = call
    return shapes


def median_ms(function, repeats):
    function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def call_overhead_ms(repeats):
    """What calling a traced function costs with nothing in it: subtracted from each op's time, since inside
    the step's one traced function the ops pay no such cost."""
    anything = tf.zeros([1])

    @tf.function(autograph=False)
    def nothing():
        return anything + 1.0

    return min(median_ms(nothing, 5 * repeats) for _ in range(3))


def time_shape(input_shape, kernel_shape, strides, padding, patches, batch_size, dtype, repeats, first_layer, overhead):
    """{'forward', 'input gradient', 'filter gradient'} ms, for a 1x1 stride-1 shape 'as matrix products'
    (the three as MatMul), and with `patches` 'filter gradient as patches' (the forward convolution is traced
    too but pruned: only the gradient is returned), for one convolution of this shape."""
    x = tf.cast(tf.random.normal((batch_size, *input_shape)), dtype)
    w = tf.cast(tf.random.normal(kernel_shape) * 0.05, dtype)
    y_shape = tf.nn.conv2d(x, w, strides, padding).shape
    dy = tf.cast(tf.random.normal(y_shape), dtype)
    ones = [1, *strides, 1]

    @tf.function(autograph=False)
    def forward():
        return tf.nn.conv2d(x, w, strides, padding)

    @tf.function(autograph=False)
    def input_gradient():
        return tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=w, out_backprop=dy, strides=ones,
                                              padding=padding)

    @tf.function(autograph=False)
    def filter_gradient():
        return tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(w), out_backprop=dy, strides=ones,
                                               padding=padding)

    def timed(function):
        return max(median_ms(function, repeats) - overhead, 1e-3)

    times = {'forward': timed(forward), 'filter gradient': timed(filter_gradient),
             'input gradient': 0.0 if first_layer else timed(input_gradient)}
    if kernel_shape[:2] == (1, 1) and tuple(strides) == (1, 1):
        xm, wm = tf.reshape(x, (-1, kernel_shape[2])), tf.reshape(w, kernel_shape[2:])
        dym = tf.reshape(dy, (-1, kernel_shape[3]))

        @tf.function(autograph=False)
        def products():
            return (tf.matmul(xm, wm)[0, 0] + tf.matmul(dym, wm, transpose_b=True)[0, 0]
                    + tf.matmul(xm, dym, transpose_a=True)[0, 0])

        times['as matrix products'] = timed(products)
    if patches:
        @tf.function(autograph=False)
        def patch_filter_gradient():
            with tf.GradientTape() as tape:
                tape.watch(w)
                outputs = patch_gradient_conv2d(x, w, strides, padding)
            return tape.gradient(outputs, w, output_gradients=dy)

        times['filter gradient as patches'] = timed(patch_filter_gradient)
    flops = 2.0 * np.prod(y_shape) * np.prod(kernel_shape[:3])
    return times, flops


def whole_step_seconds(args, nrof_classes, batch, weights):
    trainer = build_trainer(nrof_classes, args.image_size, weights, args.precision)
    step = trainer.train_step(softmax_loss(1.0, 5e-4, 0.01))
    return median_ms(lambda: float(step(batch, args.batch_size)['loss']), args.repeats) / 1e3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--precision', choices=['float32', 'bfloat16'], default='float32')
    parser.add_argument('--batch_size', type=int, default=32)
    parser.add_argument('--image_size', type=int, default=160)
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--data_dir', help='aligned faces: also time the whole step on one batch of them')
    parser.add_argument('--pretrained_model', help='with --data_dir: start the step from these weights')
    args = parser.parse_args(argv)
    if args.data_dir and not os.path.isdir(args.data_dir):
        parser.error(f'--data_dir {args.data_dir}: no such folder')
    print(cpu_summary())
    print(f'{args.precision}, batch {args.batch_size}, {args.image_size} px; ms per convolution, medians of '
          f'{args.repeats}, GFLOP/s in brackets')
    overhead = call_overhead_ms(args.repeats)
    print(f'calling a traced function costs {overhead:.3f} ms here: subtracted from every time below')
    totals, as_run_total, flops_total = collections.Counter(), 0.0, 0.0
    for index, ((input_shape, kernel_shape, strides, padding, patches), count) in enumerate(
            conv_shapes(args.image_size).items()):
        times, flops = time_shape(input_shape, kernel_shape, strides, padding, patches, args.batch_size, args.precision,
                                  args.repeats, first_layer=index == 0, overhead=overhead)
        convolution = times['forward'] + times['input gradient'] + times['filter gradient']
        as_run = convolution
        if 'as matrix products' in times:
            as_run = times['as matrix products']
        elif patches:
            as_run = convolution - times['filter gradient'] + times['filter gradient as patches']
        for kind in ('forward', 'input gradient', 'filter gradient'):
            totals[kind] += count * times[kind]
        as_run_total += count * as_run
        flops_total += count * flops * (2 if index == 0 else 3)
        rates = '  '.join(f'{kind} {times[kind]:6.2f} ({flops / times[kind] / 1e6:4.0f})'
                          for kind in ('forward', 'input gradient', 'filter gradient') if times[kind])
        products = f'  as matrix products {times["as matrix products"]:6.2f} (conv {convolution:6.2f})' \
            if 'as matrix products' in times else ''
        if patches:
            products = f'  filter gradient as patches {times["filter gradient as patches"]:6.2f}'
        print(f'{str(input_shape):15s} k{kernel_shape[0]}x{kernel_shape[1]} {kernel_shape[2]:4d}->{kernel_shape[3]:4d} '
              f's{strides[0]} {padding:5s} x{count:2d}  {rates}{products}', flush=True)
    print(f'per step: forward {totals["forward"]:.0f} ms, input gradients {totals["input gradient"]:.0f} ms, filter '
          f'gradients {totals["filter gradient"]:.0f} ms; as the step runs them {as_run_total:.0f} ms '
          f'({flops_total / as_run_total / 1e6:.0f} GFLOP/s over {flops_total / 1e9:.0f} GFLOP)')
    if args.data_dir:
        dataset = get_dataset(args.data_dir)
        image_paths, labels = get_image_paths_and_labels(dataset)
        batch = next(iter(training_batches(image_paths, labels, RANDOM_FLIP, args.image_size, args.batch_size, seed=1)))
        weights = pretrained_weights(args.pretrained_model) if args.pretrained_model else None
        seconds = whole_step_seconds(args, len(dataset), batch, weights)
        print(f'whole step on one batch: {seconds:.3f} s; the convolutions alone take {as_run_total / 1e3:.3f} s of '
              f'it ({100 * as_run_total / 1e3 / seconds:.0f}%), the rest {seconds - as_run_total / 1e3:.3f} s')


if __name__ == '__main__':
    main()
