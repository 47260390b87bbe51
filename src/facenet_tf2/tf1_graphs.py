"""The TF1 graphs that original client code imports: frozen GraphDefs made under any TF1 setting,
and the variable-backed inference metagraph of a trainer's model folder.

Original programs often begin with `tf.compat.v1.disable_v2_behavior()` (or
`disable_eager_execution()`), which makes graph mode the process-wide default. Keras 3 builds
and assigns its networks eagerly only, so `in_fresh_eager_context` runs such work in a thread of
its own under an eager context (the TF1 graph and session of the calling thread stay untouched).
"""
import concurrent.futures

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.eager import context as eager_context  # pylint: disable=no-name-in-module
from tensorflow.python.framework.convert_to_constants import \
    convert_variables_to_constants_v2  # pylint: disable=no-name-in-module

from facenet_tf2.nets.layers import original_name

INPUT_NAME = 'input'
PHASE_TRAIN_NAME = 'phase_train'
EMBEDDINGS_NAME = 'embeddings'


def in_fresh_eager_context(function, *args):
    """function(*args), run eagerly in a new thread whatever the caller's graph/eager mode is."""
    def eagerly():
        with eager_context.eager_mode():
            return function(*args)
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(eagerly).result()


def frozen_embedding_graph_def(embed, image_size):
    """A GraphDef computing `embed(images)` with its variables made constants, under the
    original's tensor names: Placeholder `input` [None, image_size, image_size, 3] (so TF1 feeding
    refuses images of another size, naming the expected shape), PlaceholderWithDefault
    `phase_train` (False; the graph is the inference network whatever is fed), `embeddings`.
    Call eagerly (in_fresh_eager_context)."""
    @tf.function(input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name=INPUT_NAME)])
    def embeddings(images):
        return tf.identity(embed(images), name=EMBEDDINGS_NAME)
    graph_def = convert_variables_to_constants_v2(embeddings.get_concrete_function()).graph.as_graph_def()
    add_phase_train(graph_def)
    return graph_def


def add_phase_train(graph_def):
    """Adds the original's `phase_train` (a bool PlaceholderWithDefault False, feeding nothing)."""
    default = graph_def.node.add(name=f'{PHASE_TRAIN_NAME}/input', op='Const')
    default.attr['dtype'].type = tf.bool.as_datatype_enum
    default.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(False))
    phase_train = graph_def.node.add(name=PHASE_TRAIN_NAME, op='PlaceholderWithDefault',
                                     input=[f'{PHASE_TRAIN_NAME}/input'])
    phase_train.attr['dtype'].type = tf.bool.as_datatype_enum
    phase_train.attr['shape'].shape.CopyFrom(tf.TensorShape([]).as_proto())
    return graph_def


def with_fixed_input_size(graph_def, image_size):
    """A copy of an original-format frozen graph whose `input` (an Identity of the input queue) is
    a Placeholder [None, image_size, image_size, 3]: the original graphs took any size and, for
    another one, returned several embeddings per image (a grid of the last feature map); TF1
    feeding now refuses it, naming the expected shape. The queue and `label_batch` stay."""
    fixed = tf.compat.v1.GraphDef()
    fixed.CopyFrom(graph_def)
    for node in fixed.node:
        if node.name == INPUT_NAME and node.op == 'Identity':
            dtype = node.attr['T'].type
            node.op = 'Placeholder'
            del node.input[:]
            node.attr.clear()
            node.attr['dtype'].type = dtype
            node.attr['shape'].shape.CopyFrom(tf.TensorShape([None, image_size, image_size, 3]).as_proto())
    return fixed


def _float32_copy(network):
    """A float32 copy of a Keras network (same layer tree, so the same variable paths), outside
    any distribution strategy."""
    def replace_policy(config):
        if isinstance(config, list):
            return [replace_policy(item) for item in config]
        if not isinstance(config, dict):
            return config
        if config.get('class_name') == 'DTypePolicy':
            return 'float32'
        return {key: replace_policy(value) for key, value in config.items()}
    config = keras.saving.serialize_keras_object(network)['config']
    return keras.Model.from_config(replace_policy(config))


def inference_metagraph(network, scope, weights, image_size):
    """The MetaGraphDef of a trainer's `model-<subdir>.meta`: a TF1 resource variable per entry of
    `weights` ({original name: array}, shapes and dtypes only), the Saver that restores them from
    the name-based checkpoints, Placeholder `input` [None, image_size, image_size, 3],
    PlaceholderWithDefault `phase_train` and `embeddings`, the L2-normalised prelogits of `network`
    in inference mode (BatchNorm on its moving statistics) computed from those variables.
    scope: the network's original variable scope. Call eagerly."""
    copy = _float32_copy(network)

    @tf.function(input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32)])
    def embed(images):
        return tf.math.l2_normalize(copy(images, training=False), axis=1, epsilon=1e-10)
    concrete = embed.get_concrete_function()
    # The copy's variable paths need not be the network's (from_config builds in another name
    # scope); its layer tree is the same, so the variables pair up in order.
    by_handle = {}
    for ours, theirs in zip(copy.weights, network.weights, strict=True):
        if tuple(ours.shape) != tuple(theirs.shape):
            raise ValueError(f'the float32 copy of {network.name} does not pair up with it at {theirs.path}')
        by_handle[id(ours.value.handle)] = original_name(scope, theirs.path)
    captures = {internal.op.name: by_handle.get(id(external)) for external, internal in concrete.graph.captures}
    function_def, read = _reads_as_inputs(concrete.graph.as_graph_def(), captures)
    input_tensor = concrete.graph.inputs[0].name
    output_name = concrete.outputs[0].name
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, image_size, image_size, 3], name=INPUT_NAME)
        tf.compat.v1.placeholder_with_default(False, [], name=PHASE_TRAIN_NAME)
        # Reference variables, as the original's Saver held: `sess.run('<variable name>:0')` reads a value.
        variables = {name: tf.compat.v1.get_variable(name, shape=np.shape(value),
                                                     dtype=tf.as_dtype(np.asarray(value).dtype),
                                                     initializer=tf.compat.v1.zeros_initializer(), use_resource=False)
                     for name, value in sorted(weights.items())}
        input_map = {input_tensor: images}
        for placeholder, name in captures.items():
            if placeholder not in read:  # captured but unused
                continue
            if name not in variables:
                raise ValueError(f'the network reads {name or "an unnamed variable"}, which the checkpoint lacks')
            input_map[placeholder + ':0'] = variables[name].value()
        prelogits, = tf.compat.v1.import_graph_def(function_def, input_map=input_map, return_elements=[output_name],
                                                   name='inference')
        tf.identity(prelogits, name=EMBEDDINGS_NAME)
        saver = tf.compat.v1.train.Saver(list(variables.values()), max_to_keep=3)
        return saver.export_meta_graph()


def _reads_as_inputs(graph_def, captures):
    """graph_def with each captured variable's resource placeholder (name in `captures`) turned into
    a value placeholder and its ReadVariableOp readers into Identity, so that the values can be
    mapped in from reference variables; and the names of the placeholders read."""
    dtypes = {}
    for node in graph_def.node:
        if node.op == 'ReadVariableOp' and node.input[0] in captures:
            dtypes[node.input[0]] = node.attr['dtype'].type
            node.op = 'Identity'
            dtype = node.attr['dtype'].type
            node.attr.clear()
            node.attr['T'].type = dtype
        elif any(name.split(':')[0].lstrip('^') in captures for name in node.input):
            raise ValueError(f'{node.name} ({node.op}) uses a variable other than by reading it')
    for node in graph_def.node:
        if node.name in dtypes:
            node.attr.clear()
            node.attr['dtype'].type = dtypes[node.name]
    return graph_def, set(dtypes)
