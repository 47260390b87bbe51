"""Embedding throughput: this project's Keras network against the original frozen graph in a TF1 Session.

Contenders, measured in one run with the repetitions interleaved (A B C ... A B C ...) because the
machine may be shared; the figures are medians:
- original: the frozen .pb imported into a tf.compat.v1.Session, sess.run(embeddings) feeding input
  and phase_train (the original's way);
- float32: what facenet.load_model runs for a checkpoint, .h5 or .keras model: the Keras network with
  BatchNorm folded, one compiled tf.function;
- float32+xla: the same with jit_compile=True;
- unfolded: the Keras network as trained (BatchNorm not folded), for reference;
- bfloat16: the folded network under the mixed_bfloat16 policy (reported apart: it changes the numbers);
- onnx, onnx-int8, tflite: the float32 ONNX, INT8 ONNX and TFLite exports of the same model
  (freeze_graph.py --onnx/--int8/--tflite) run by load_model through ONNX Runtime and LiteRT
  (facenet_tf2.runtimes), when --onnx, --int8 or --tflite names the file.

The input batches are real faces: LFW images, the central 180x180 box resized to 160x160 and
prewhitened. For each contender the largest deviation of its embeddings from the original's on the
same batch is printed. Besides wall-clock images/s the CPU time per image of this process is given,
which is less sensitive to other jobs on a shared machine.

With --lfw_dir (LFW aligned by align_dataset_mtcnn.py --image_size 160 --margin 32) and --lfw_pairs,
it also embeds all pair images in float32 and bfloat16 and prints both LFW accuracies (needs `lfw`).

    python benchmarks/bench_embeddings.py ../shared/models/20170512-110547/20170512-110547.pb \
        --lfw_images ../shared/lfw/lfw-deepfunneled
    python benchmarks/bench_embeddings.py ../shared/models/20170512-110547/20170512-110547.pb --batch_sizes 1 32 \
        --onnx m.onnx --int8 m_int8.onnx --tflite m.tflite   # contenders: all whose file is given
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import tensorflow as tf
from PIL import Image

from facenet_tf2.images import prewhiten, read_image
from facenet_tf2.inference import fold_batch_norm
from facenet_tf2.model_io import keras_embedding_function, load_keras_network, load_model

RUNTIME_CONTENDERS = {'onnx': 'onnx', 'onnx-int8': 'int8', 'tflite': 'tflite'}  # contender -> its file option


def face_batch(lfw_images, size):
    """`size` real faces: the first LFW images, central box, 160x160, prewhitened."""
    paths = sorted(os.path.join(root, name) for root, _, names in os.walk(lfw_images) for name in names
                   if name.endswith('.jpg'))[:size]
    faces = []
    for path in paths:
        image = Image.fromarray(read_image(path))
        width, height = image.size
        box = ((width - 180) // 2, (height - 180) // 2, (width + 180) // 2, (height + 180) // 2)
        faces.append(prewhiten(np.asarray(image.crop(box).resize((160, 160), Image.BILINEAR))))
    faces = np.stack(faces).astype(np.float32)
    return np.concatenate([faces] * (size // len(faces) + 1))[:size]


def original_session(pb_file):
    """sess.run of the original frozen graph, as the original scripts did."""
    graph = tf.Graph()
    with graph.as_default():
        graph_def = tf.compat.v1.GraphDef()
        with open(pb_file, 'rb') as f:
            graph_def.ParseFromString(f.read())
        tf.compat.v1.import_graph_def(graph_def, name='')
    sess = tf.compat.v1.Session(graph=graph)
    feeds = graph.get_tensor_by_name('input:0'), graph.get_tensor_by_name('phase_train:0')
    embeddings = graph.get_tensor_by_name('embeddings:0')
    return lambda images: sess.run(embeddings, feed_dict={feeds[0]: images, feeds[1]: False})


def contenders(pb_file, names, files=None):
    """{name: images -> embeddings (NumPy)}; files: {contender: exported file} for the runtime ones."""
    network, _ = load_keras_network(pb_file)
    folded = fold_batch_norm(network)
    makers = {
        'original': lambda: original_session(pb_file),
        'float32': lambda: _numpy(keras_embedding_function(folded)),
        'float32+xla': lambda: _numpy(keras_embedding_function(folded, jit_compile=True)),
        'unfolded': lambda: _numpy(keras_embedding_function(network)),
        'bfloat16': lambda: _numpy(keras_embedding_function(fold_batch_norm(network, 'mixed_bfloat16'))),
        **{name: (lambda path=path: _numpy(load_model(path))) for name, path in (files or {}).items()},
    }
    return {name: makers[name]() for name in names}


def _numpy(function):
    return lambda images: function(tf.constant(images)).numpy()


def measure(functions, images, repeats):
    """{name: (median seconds, median CPU seconds)} per batch, interleaving the contenders."""
    wall = {name: [] for name in functions}
    cpu = {name: [] for name in functions}
    for function in functions.values():  # warm-up: tracing, compilation, memory
        function(images)
    for _ in range(repeats):
        for name, function in functions.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            function(images)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in functions}


def lfw_accuracies(functions, lfw_dir, pairs_file):
    import lfw  # pylint: disable=import-outside-toplevel
    paths, issame = lfw.get_paths(os.path.expanduser(lfw_dir), lfw.read_pairs(os.path.expanduser(pairs_file)))
    images = np.stack([prewhiten(read_image(path)) for path in paths]).astype(np.float32)
    for name in ('original', 'float32', 'bfloat16', *RUNTIME_CONTENDERS):
        if name in functions:
            embeddings = np.concatenate([functions[name](images[i:i + 128]) for i in range(0, len(images), 128)])
            accuracy = lfw.evaluate(embeddings, np.asarray(issame), nrof_folds=10)[2]
            print(f'LFW accuracy {name:10s} {np.mean(accuracy):.5f} +- {np.std(accuracy):.5f}')


def main(args):
    files = {name: os.path.expanduser(getattr(args, option)) for name, option in RUNTIME_CONTENDERS.items()
             if getattr(args, option)}
    names = args.contenders or ['original', 'float32', 'float32+xla', 'bfloat16', *files]
    missing = [name for name in names if name in RUNTIME_CONTENDERS and name not in files]
    if missing:
        sys.exit(f'contender {missing[0]} needs its file: --{RUNTIME_CONTENDERS[missing[0]]} FILE')
    functions = contenders(os.path.expanduser(args.model), names, files)
    print(f'{args.repeats} interleaved repeats, medians; ratio = images/s over the original\'s')
    print(f'{"batch":>5} {"contender":12s} {"images/s":>9} {"ratio":>6} {"CPU ms/image":>12} {"max |diff|":>10}')
    for batch_size in args.batch_sizes:
        images = face_batch(os.path.expanduser(args.lfw_images), batch_size)
        reference = functions['original'](images) if 'original' in functions else None
        timings = measure(functions, images, args.repeats)
        base = timings.get('original', (None,))[0]
        for name, (seconds, cpu_seconds) in timings.items():
            ratio = f'{base / seconds:6.2f}' if base else '     -'
            diff = f'{np.abs(functions[name](images) - reference).max():10.1e}' if reference is not None else ''
            print(f'{batch_size:5d} {name:12s} {batch_size / seconds:9.1f} {ratio} '
                  f'{1000 * cpu_seconds / batch_size:12.1f} {diff}')
        sys.stdout.flush()
    if args.lfw_dir:
        lfw_accuracies(functions, args.lfw_dir, args.lfw_pairs)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('model', help='An original-format frozen .pb (input, phase_train, embeddings)')
    parser.add_argument('--lfw_images', default='../shared/lfw/lfw-deepfunneled',
                        help='Unaligned LFW images the input batches are cut from')
    parser.add_argument('--batch_sizes', type=int, nargs='+', default=[1, 32, 128])
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--contenders', nargs='+',
                        choices=['original', 'float32', 'float32+xla', 'unfolded', 'bfloat16', *RUNTIME_CONTENDERS],
                        help='Default: original, float32, float32+xla, bfloat16 and each runtime whose file is given')
    parser.add_argument('--onnx', help='A float32 ONNX export of the model (freeze_graph.py --onnx)')
    parser.add_argument('--int8', help='An INT8 ONNX export of the model (freeze_graph.py --int8)')
    parser.add_argument('--tflite', help='A TFLite export of the model (freeze_graph.py --tflite)')
    parser.add_argument('--lfw_dir', help='Aligned LFW (160x160, margin 32) for the bfloat16 accuracy check')
    parser.add_argument('--lfw_pairs', default='../shared/lfw/pairs.txt')
    return parser.parse_args(argv)


if __name__ == '__main__':
    main(parse_arguments(sys.argv[1:]))
