"""facenet.load_model for TF2: any pretrained model format to an embedding callable.

`load_model(model)` accepts a pretrained model name (`20180402-114759`, `20180408-102900`,
`20170512-110547`: downloaded on first use, see facenet_tf2.pretrained), a frozen `.pb`, a checkpoint
folder (`model-*.ckpt-*` + `.meta`), a SavedModel folder, a `.keras` file, a Keras-2 `.h5`, an `.onnx`
or `.tflite` file (run by ONNX Runtime or LiteRT, facenet_tf2.runtimes), or a folder holding one of these, and returns an `EmbeddingModel`: `m(images)` maps float images [N, H, W, 3]
(standardised as the model expects) to L2-normalised embeddings [N, D], also inside a tf.function,
on CPU or GPU.

A frozen graph runs as the graph it is (imported with tf.compat.v1.wrap_function and pruned from
`input:0` to `embeddings:0`, `phase_train:0` fed False), so the original's own numbers come out;
an inference-optimised graph (batch size fixed in its reshapes) and the other formats are loaded
into the Keras networks of `models/`.

Called inside a TF1 graph context (`with tf.Graph().as_default(): with tf.compat.v1.Session()`,
or after `tf.compat.v1.disable_eager_execution()`) or with a default TF1 session (an
InteractiveSession), load_model does what the original did instead: it imports the model as a
frozen graph into that graph, so `sess.run('embeddings:0', {'input:0': ..., 'phase_train:0':
False})` works, whatever format the model is in (see import_into_default_graph).
"""
import logging
import glob
import json
import os

import keras
import tensorflow as tf

from facenet_tf2.inference import fold_batch_norm  # also registers the layers that .keras files name
from facenet_tf2.nets.layers import l2_normalize
from facenet_tf2.pretrained import names_text, resolve_model, standardization
from facenet_tf2.weights import (build_keras_model, checkpoint_weights, frozen_graph_weights, get_model_filenames,
                                 is_inference_optimised, keras2_h5_weights, read_graph_def)
from facenet_tf2.embedding_model import EmbeddingModel  # noqa: F401  (the interface every loader returns)
from facenet_tf2.errors import ModelLoadError
from facenet_tf2.tf1_graphs import frozen_embedding_graph_def, in_fresh_eager_context, with_fixed_input_size

log = logging.getLogger(__name__)

INPUT_TENSOR = 'input:0'
PHASE_TRAIN_TENSOR = 'phase_train:0'
EMBEDDINGS_TENSOR = 'embeddings:0'


def keras_embedding_function(model, jit_compile=False):
    """A compiled tf.function computing embeddings with a Keras prelogits model (inference mode)."""
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)], jit_compile=jit_compile,
                 reduce_retracing=True)
    def embed(images):
        return l2_normalize(tf.cast(model(images, training=False), tf.float32))
    return embed


# load_model's `precision` -> the Keras dtype policy of the network it runs.
PRECISIONS = {'float32': None, 'bfloat16': 'mixed_bfloat16'}


def embedding_model_from_keras(model, source, image_size=None, precision='float32'):
    """The EmbeddingModel of a Keras prelogits network; it runs a BatchNorm-folded copy, computing
    in `precision` (weights stay float32, embeddings are float32 either way)."""
    side = model.input_shape[1]
    folded = fold_batch_norm(model, PRECISIONS[precision])
    return EmbeddingModel(keras_embedding_function(folded), model.output_shape[-1],
                          image_size if image_size is not None else side, source, keras_model=model, owner=folded)


def frozen_graph_function(graph_def, input_map=None, source='graph'):
    """Imports a frozen facenet GraphDef and prunes it to a ConcreteFunction input -> embeddings.

    The original freeze_graph.py left the input queue (FIFOQueueV2, QueueDequeueUpToV2) in its
    graphs, with `input` an Identity of the dequeued batch; pruning from `input:0` leaves the
    queue out. `phase_train` (absent from inference-optimised graphs) is fed False.
    """
    names = {node.name for node in graph_def.node}
    for tensor in (INPUT_TENSOR, EMBEDDINGS_TENSOR):
        if tensor.split(':')[0] not in names:
            raise ModelLoadError(source, f'the graph has no `{tensor.split(":")[0]}` tensor; not a facenet model')
    input_map = dict(input_map or {})
    if INPUT_TENSOR in input_map or 'input' in input_map:
        raise ModelLoadError(source, 'input_map cannot replace `input`; pass the images to the returned model')

    def import_graph():
        mapping = {_tensor_name(name): tf.constant(value) for name, value in input_map.items()}
        if 'phase_train' in names:
            mapping.setdefault(PHASE_TRAIN_TENSOR, tf.constant(False))
        tf.compat.v1.import_graph_def(graph_def, input_map=mapping, name='')

    wrapped = tf.compat.v1.wrap_function(import_graph, [])
    graph = wrapped.graph
    return wrapped.prune(feeds=graph.get_tensor_by_name(INPUT_TENSOR),
                         fetches=graph.get_tensor_by_name(EMBEDDINGS_TENSOR))


def _tensor_name(name):
    return name if ':' in name else name + ':0'


def graph_image_size(graph_def):
    """Input side of a facenet graph: from the `input` placeholder's shape or, in the original
    frozen graphs, from the shapes of the queue that feeds it; None when neither says."""
    nodes = {node.name: node for node in graph_def.node}
    node = nodes.get('input')
    while node is not None:
        if node.op in ('Placeholder', 'PlaceholderWithDefault'):
            dims = [d.size for d in node.attr['shape'].shape.dim]
            return dims[1] if len(dims) == 4 and dims[1] > 0 else None
        if node.op.startswith('QueueDequeue'):
            queue = nodes.get(node.input[0].split(':')[0])
            shapes = queue.attr['shapes'].list.shape if queue is not None else []
            return shapes[0].dim[0].size if shapes and len(shapes[0].dim) == 3 else None
        if node.op != 'Identity':
            return None
        node = nodes.get(node.input[0].lstrip('^').split(':')[0])
    return None


def load_keras_network(model):
    """(Keras prelogits model, image size or None) of a model in a format that carries its
    weights: a checkpoint folder, an original-format frozen .pb, a Keras-2 .h5 or a .keras file
    (or a folder holding one)."""
    kind, path = find_model(model)
    return _keras_network(kind, path)


def _keras_network(kind, path, graph_def=None):
    """load_keras_network for a model already found; graph_def: the .pb's, if already read."""
    if kind == 'keras':
        network = _load_keras_file(path)
        return network, network.input_shape[1]
    if kind == 'checkpoint':
        meta_file, ckpt_file = get_model_filenames(path)
        source = os.path.join(path, ckpt_file)
        weights, image_size = checkpoint_weights(source), _meta_image_size(os.path.join(path, meta_file))
    elif kind == 'pb':
        graph_def, source = graph_def if graph_def is not None else read_graph_def(path), path
        weights, image_size = frozen_graph_weights(graph_def), graph_image_size(graph_def)
    elif kind == 'h5':
        source, weights, image_size = path, keras2_h5_weights(path), _h5_image_size(path)
    else:
        raise ModelLoadError(path, 'a SavedModel holds a traced function, not the network; export from the '
                                   'model it was made from')
    return build_keras_model(weights, image_size, source), image_size


def _meta_image_size(meta_path):
    """Input side recorded in a checkpoint's .meta (its MetaGraphDef), read as a protobuf only."""
    meta = tf.compat.v1.MetaGraphDef()
    try:
        with open(meta_path, 'rb') as f:
            meta.ParseFromString(f.read())
    except Exception as e:  # protobuf's DecodeError has no stable import path
        raise ModelLoadError(meta_path, f'not a MetaGraphDef ({e})') from None
    return graph_image_size(meta.graph_def)


def _h5_image_size(path):
    import h5py  # pylint: disable=import-outside-toplevel
    with h5py.File(path, 'r') as h5:
        config = h5.attrs.get('model_config')
    if config is None:
        return None
    for layer in json.loads(config)['config']['layers']:
        if layer['class_name'] == 'InputLayer':
            shape = layer['config'].get('batch_input_shape') or layer['config'].get('batch_shape')
            return shape[1] if shape and len(shape) == 4 else None
    return None


def _load_keras_file(path):
    try:
        return keras.saving.load_model(path)
    except Exception as e:  # Keras raises many types for a bad file
        raise ModelLoadError(path, f'cannot load the Keras model ({e})') from None


def load_saved_model(path):
    """A SavedModel: ours (see export.save_embedding_saved_model) has `embed` and the sizes; any
    other with a one-input serving signature is taken to return embeddings."""
    try:
        loaded = tf.saved_model.load(path)
    except (OSError, ValueError, tf.errors.OpError) as e:
        raise ModelLoadError(path, f'cannot load the SavedModel ({e})') from None
    if hasattr(loaded, 'embed'):
        image_size = int(loaded.image_size.numpy())
        return EmbeddingModel(loaded.embed, int(loaded.embedding_size.numpy()), image_size or None, path,
                              owner=loaded)
    signature = loaded.signatures.get('serving_default')
    if signature is None or len(signature.structured_input_signature[1]) != 1:
        raise ModelLoadError(path, 'the SavedModel has neither `embed` nor a one-input serving_default signature')
    (input_name, spec), = signature.structured_input_signature[1].items()
    output_name = sorted(signature.structured_outputs)[0]

    def embed(images):
        return signature(**{input_name: images})[output_name]
    side = spec.shape[1] if spec.shape.rank == 4 else None
    embedding_size = signature.structured_outputs[output_name].shape[-1]
    return EmbeddingModel(embed, embedding_size, side, path, owner=loaded)


def find_model(path):
    """(format, file or folder) of the model at `path`: 'pb', 'checkpoint', 'saved_model', 'keras' or 'h5'.

    A pretrained model name is downloaded first (facenet_tf2.pretrained). A folder is searched
    like the original's model folders: a checkpoint (`.meta`) first, as the
    original load_model did, then a SavedModel, then a single .pb, .keras or .h5 file.
    """
    path = resolve_model(path)
    if not os.path.exists(path):
        raise ModelLoadError(path, f'no such file or directory; give a model file or folder, or a pretrained '
                                   f'model name ({names_text()})')
    if os.path.isfile(path):
        for extension, kind in (('.pb', 'pb'), ('.keras', 'keras'), ('.h5', 'h5'), ('.hdf5', 'h5'),
                                ('.onnx', 'onnx'), ('.tflite', 'tflite')):
            if path.lower().endswith(extension):
                return kind, path
        raise ModelLoadError(path, 'unknown model file type (expected .pb, .keras, .h5, .onnx or .tflite, or a '
                                   'model directory)')
    if glob.glob(os.path.join(glob.escape(path), '*.meta')):
        return 'checkpoint', path
    if os.path.exists(os.path.join(path, 'saved_model.pb')):
        return 'saved_model', path
    for extension, kind in (('.pb', 'pb'), ('.keras', 'keras'), ('.h5', 'h5'), ('.onnx', 'onnx'),
                            ('.tflite', 'tflite')):
        files = sorted(glob.glob(os.path.join(glob.escape(path), '*' + extension)))
        if len(files) > 1:
            raise ModelLoadError(path, f'more than one {extension} file in the model directory '
                                       f'({", ".join(os.path.basename(f) for f in files)}); name one')
        if files:
            return kind, files[0]
    raise ModelLoadError(path, 'no model found in the directory (no .meta + checkpoint, SavedModel, .pb, .keras, .h5, '
                               '.onnx or .tflite)')


def load_model(model, input_map=None, precision='float32'):
    """The original facenet.load_model, for TF2: returns an `EmbeddingModel` (see the module doc).

    `model` is a path or a pretrained model name. `input_map` maps tensor names of a frozen graph
    to values fed in at import (the original's argument); other formats have no graph tensors to
    map and reject it.
    `precision='bfloat16'` computes in bfloat16 (mixed precision): about twice as fast on CPUs with
    AVX512-BF16 or AMX and on recent GPUs, with embeddings within about 1e-2 of float32 (LFW accuracy
    unchanged for 20170512-110547, see README). A frozen .pb then runs as the Keras network built from
    its constants instead of as its own graph.
    Under a TF1 graph context it imports the model into the default graph and returns None, as the
    original did (see the module doc).
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {", ".join(PRECISIONS)}, not {precision!r}')
    embedding_model = _load_model(model, input_map, precision)
    if embedding_model is not None:
        embedding_model.standardization = standardization(model, embedding_model.standardization)
    return embedding_model


def _load_model(model, input_map, precision):
    kind, path = find_model(model)
    log.info(f'Model filename: {path}' if os.path.isfile(path) else f'Model directory: {path}')
    if kind in ('onnx', 'tflite'):
        if precision != 'float32' or input_map or not tf.executing_eagerly():
            raise ModelLoadError(path, f'a .{kind} model runs as it was exported: no precision, no input_map, and '
                                       'not inside a TF1 session; export another model for those')
        from facenet_tf2.runtimes import load_runtime_model  # pylint: disable=import-outside-toplevel  # optional
        return load_runtime_model(kind, path)
    session = tf.compat.v1.get_default_session()
    if (not tf.executing_eagerly() and not tf.inside_function()) or session is not None:
        if precision != 'float32':
            raise ModelLoadError(path, f'precision={precision} works in TF2 code only, not in a TF1 session')
        # A default session without a graph context (an InteractiveSession, `with sess.as_default()`)
        # runs the graph it was made on: the model goes there, as the original's did.
        graph = tf.compat.v1.get_default_graph() if not tf.executing_eagerly() else session.graph
        with graph.as_default():
            import_into_default_graph(kind, path, input_map)
        return None
    graph_def = read_graph_def(path) if kind == 'pb' else None
    if graph_def is not None and precision == 'float32' and not is_inference_optimised(graph_def):
        function = frozen_graph_function(graph_def, input_map, source=path)
        return EmbeddingModel(function, _embedding_size(function, graph_def), graph_image_size(graph_def), path)
    if input_map:
        raise ModelLoadError(path, 'input_map applies to frozen .pb graphs run as they are, not to '
                                   + (f'precision={precision}' if precision != 'float32' else
                                      'an inference-optimised graph' if kind == 'pb' else f'a {kind} model'))
    if kind == 'saved_model':
        if precision != 'float32':
            raise ModelLoadError(path, f'precision={precision} needs the network\'s weights: give a .pb, '
                                       'checkpoint, .keras or .h5 model')
        return load_saved_model(path)
    network, image_size = _keras_network(kind, path, graph_def)
    return embedding_model_from_keras(network, path, image_size, precision)


def _embedding_size(function, graph_def):
    size = function.outputs[0].shape[-1]
    if size is None:  # a graph without static shapes: ask it
        side = graph_image_size(graph_def) or 160
        size = function(tf.zeros([1, side, side, 3])).shape[-1]
    return size


def import_into_default_graph(kind, path, input_map=None):
    """The original load_model: the model as a frozen graph (tensors `input`, `phase_train`,
    `embeddings`, and `label_batch` where the original graph had it) imported into the default
    graph under no name scope, `input_map` applied as the original's import_graph_def did.

    `input` takes the model's image size only (an original graph's becomes a sized Placeholder:
    tf1_graphs.with_fixed_input_size). An inference-optimised graph (batch size fixed) and the
    other formats are exported as a frozen graph first, in a fresh eager context because Keras
    builds its networks eagerly only, whether or not the program disabled eager execution.
    """
    graph_def = read_graph_def(path) if kind == 'pb' else None
    if graph_def is not None and not is_inference_optimised(graph_def):
        image_size = graph_image_size(graph_def)
        graph_def = with_fixed_input_size(graph_def, image_size) if image_size else graph_def
    else:
        graph_def = in_fresh_eager_context(_exported_graph_def, kind, path, graph_def)
    tf.compat.v1.import_graph_def(graph_def, input_map=input_map, name='')


def _exported_graph_def(kind, path, graph_def):
    from facenet_tf2.export import frozen_graph_def  # pylint: disable=import-outside-toplevel  # export imports us
    if kind == 'saved_model':
        model = load_saved_model(path)
        if not model.image_size:
            raise ModelLoadError(path, 'the SavedModel does not say its input size; export it with a fixed '
                                       'image size to import it into a TF1 session')
        return frozen_embedding_graph_def(model, model.image_size)
    network, image_size = _keras_network(kind, path, graph_def)
    return frozen_graph_def(network, image_size or 160)
