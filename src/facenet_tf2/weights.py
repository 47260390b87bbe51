"""Pretrained weights in every format the original's users hold, read into the Keras models.

Each reader returns `{original variable name: ndarray}`; `build_keras_model` recognises the network
from the names (InceptionResnetV1, InceptionResnetV2, squeezenet, dummy), builds it and assigns
every weight by name through the one mapping in facenet_tf2.nets.layers. Formats:
- a frozen GraphDef (.pb) written by the original freeze_graph.py: the variables are Const nodes
  under their variable names; in an inference-optimised graph (TF's optimize_for_inference, as
  the graph_final.pb of the 2018 models) BatchNorm is folded into each convolution, whose
  `weights` are then scaled and whose `Conv2D_bn_offset` is the folded BatchNorm's offset;
- a TF1 name-based checkpoint (`model-*.ckpt-*`): read with tf.train.load_checkpoint, because
  tf.compat.v1.train.import_meta_graph fails on the 2018 models' .meta under TF2;
- a Keras-2 .h5 conversion in keras-facenet naming (facenet_keras.h5 of nyoki-mtl/keras-facenet).
"""
import importlib
import os
import re

import numpy as np
import tensorflow as tf

from facenet_tf2.errors import ModelLoadError
from facenet_tf2.nets.layers import BATCH_NORM_EPSILON, original_name

# Keras model name -> module of its builder (`build_model`, and `SCOPE`: the original variable scope).
ARCHITECTURES = {
    'InceptionResnetV1': 'facenet_tf2.nets.inception_resnet_v1',
    'InceptionResnetV2': 'facenet_tf2.nets.inception_resnet_v2',
    'squeezenet': 'facenet_tf2.nets.squeezenet',
    'dummy': 'facenet_tf2.nets.dummy',
}
_VARIABLE_LEAVES = ('weights', 'biases', 'beta', 'gamma', 'moving_mean', 'moving_variance')


def read_graph_def(path):
    graph_def = tf.compat.v1.GraphDef()
    try:
        with open(path, 'rb') as f:
            graph_def.ParseFromString(f.read())
    except FileNotFoundError:
        raise ModelLoadError(path, 'no such file') from None
    except Exception as e:  # protobuf's DecodeError has no stable import path
        raise ModelLoadError(path, f'not a frozen GraphDef protobuf ({e})') from None
    if not graph_def.node:
        raise ModelLoadError(path, 'empty GraphDef (no nodes)')
    return graph_def


_FOLDED_OFFSET = 'Conv2D_bn_offset'


def frozen_graph_weights(graph_def):
    """The variable constants of a frozen graph, by variable name.

    A folded convolution's offset becomes a BatchNorm that changes nothing but adds it (mean 0,
    variance 1 - epsilon, beta = offset), so the network's layers take the weights unchanged
    and folding them again (facenet_tf2.inference) gives back the graph's own kernels.
    """
    weights = {node.name: tf.make_ndarray(node.attr['value'].tensor) for node in graph_def.node
               if node.op == 'Const' and node.name.rsplit('/', 1)[-1] in _VARIABLE_LEAVES + (_FOLDED_OFFSET,)}
    for name in [name for name in weights if name.endswith('/' + _FOLDED_OFFSET)]:
        offset = weights.pop(name)
        scope = name.rsplit('/', 1)[0]
        weights[f'{scope}/BatchNorm/beta'] = offset
        weights[f'{scope}/BatchNorm/moving_mean'] = np.zeros_like(offset)
        weights[f'{scope}/BatchNorm/moving_variance'] = np.full_like(offset, 1 - BATCH_NORM_EPSILON)
    return weights


def is_inference_optimised(graph_def):
    """True for a graph whose BatchNorms were folded into the convolutions by TF's inference
    optimisation; such graphs also fix the batch size in their reshapes (at 1 in the 2018 models)."""
    return any(node.name.endswith('/' + _FOLDED_OFFSET) for node in graph_def.node)


def checkpoint_weights(checkpoint_prefix):
    """Every tensor of a TF1 (or TF2) checkpoint, by variable name."""
    try:
        reader = tf.train.load_checkpoint(checkpoint_prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise ModelLoadError(checkpoint_prefix, f'cannot read the checkpoint ({e})') from None
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def list_variables(filename):
    """Sorted variable names of a checkpoint (the original facenet.list_variables)."""
    return sorted(tf.train.load_checkpoint(filename).get_variable_to_shape_map())


# keras-facenet (Keras 2) layer names -> original scopes. Its stem and reductions are named
# after the original scopes; repeated blocks are Block35_1..5, Block17_1..10, Block8_1..6 with
# their branch convolutions numbered Block35_1_Branch_2_Conv2d_0c_3x3, and the bottleneck is
# `Bottleneck` + `Bottleneck_BatchNorm`.
_KERAS_FACENET_BLOCKS = {'Block35': ('Repeat', 'block35', 5), 'Block17': ('Repeat_1', 'block17', 10),
                         'Block8': ('Repeat_2', 'block8', 5)}


def _keras_facenet_scope(layer):
    """Original scope of a keras-facenet layer name (None for layers without weights we map)."""
    name = layer[:-len('_BatchNorm')] if layer.endswith('_BatchNorm') else layer
    match = re.fullmatch(r'(Block35|Block17|Block8)_(\d+)_(.+)', name)
    if match:
        block, index, rest = match.group(1), int(match.group(2)), match.group(3)
        repeat_scope, block_name, count = _KERAS_FACENET_BLOCKS[block]
        prefix = 'Block8' if index > count else f'{repeat_scope}/{block_name}_{index}'
        rest = re.sub(r'^(Branch_\d)_', r'\1/', rest)
        name = f'{prefix}/{rest}'
    else:
        name = re.sub(r'^(Mixed_\d[a-z])_(Branch_\d)_', r'\1/\2/', name)
    return name + '/BatchNorm' if layer.endswith('_BatchNorm') else name


_H5_LEAF = {'kernel': 'weights', 'bias': 'biases', 'beta': 'beta', 'gamma': 'gamma',
            'moving_mean': 'moving_mean', 'moving_variance': 'moving_variance'}


def keras2_h5_weights(path):
    """Weights of a Keras-2 Inception-ResNet-v1 .h5 in keras-facenet naming, by original name."""
    import h5py  # pylint: disable=import-outside-toplevel
    try:
        h5 = h5py.File(path, 'r')
    except OSError as e:
        raise ModelLoadError(path, f'not an HDF5 file ({e})') from None
    weights = {}
    with h5:
        group = h5['model_weights'] if 'model_weights' in h5 else h5
        for layer in group.attrs.get('layer_names', []):
            layer = layer.decode() if isinstance(layer, bytes) else layer
            for weight_name in group[layer].attrs.get('weight_names', []):
                weight_name = weight_name.decode() if isinstance(weight_name, bytes) else weight_name
                leaf = weight_name.rsplit('/', 1)[-1].split(':')[0]
                if leaf not in _H5_LEAF:
                    raise ModelLoadError(path, f'unexpected weight {weight_name} in layer {layer}')
                name = f'InceptionResnetV1/{_keras_facenet_scope(layer)}/{_H5_LEAF[leaf]}'
                weights[name] = np.asarray(group[layer][weight_name])
    if not weights:
        raise ModelLoadError(path, 'no layer weights found (not a Keras .h5 weights file?)')
    return weights


def detect_architecture(weights, source='weights'):
    """(builder module, bottleneck size) of the network the weight names belong to."""
    for module_name in ARCHITECTURES.values():
        module = importlib.import_module(module_name)
        bottleneck = original_name(module.SCOPE, 'Bottleneck/kernel')
        if bottleneck in weights:
            return module, int(weights[bottleneck].shape[-1])
    raise ModelLoadError(source, 'no known network found (no InceptionResnetV1/Bottleneck/weights or the '
                                 'like among the variables)')


def check_weights_fit(weights, network_module, embedding_size, source='weights'):
    """Raises ModelLoadError (one line, with the flag to pass) unless `weights` ({original name:
    array}) are of the network `network_module` builds (a --model_def module) with prelogits of
    `embedding_size`, as a trainer's --pretrained_model must be."""
    module, bottleneck_size = detect_architecture(weights, source)
    if module.SCOPE != network_module.SCOPE:
        raise ModelLoadError(source, f'the model is {module.__name__.rsplit(".", 1)[-1]} ({bottleneck_size}-d '
                                     f'embeddings), not {network_module.__name__}; pass --model_def '
                                     f'models.{module.__name__.rsplit(".", 1)[-1]}')
    if bottleneck_size != int(embedding_size):
        raise ModelLoadError(source, f'the model has {bottleneck_size}-d embeddings, not {embedding_size}; pass '
                                     f'--embedding_size {bottleneck_size}')


def build_keras_model(weights, image_size=None, source='weights'):
    """Builds the Keras model matching `weights` ({original name: array}) and loads them into it.
    Extra names (logits, centres, moving-average copies, global_step) are ignored."""
    module, bottleneck_layer_size = detect_architecture(weights, source)
    model = module.build_model(image_size=image_size, dropout_keep_prob=1.0,
                               bottleneck_layer_size=bottleneck_layer_size)
    assign_weights(model, weights, source)
    return model


def assign_weights(model, weights, source='weights'):
    """Sets every variable of `model` from `weights` by original name; all must be present."""
    scope = model_scope(model)
    missing, wrong_shape = [], []
    for variable in model.weights:
        name = original_name(scope, variable.path)
        value = weights.get(name)
        if value is None:
            missing.append(name)
        elif tuple(value.shape) != tuple(variable.shape):
            wrong_shape.append(f'{name} {tuple(value.shape)} (model: {tuple(variable.shape)})')
        else:
            variable.assign(value)
    if missing or wrong_shape:
        problems = ([f'{len(missing)} missing variables, e.g. {", ".join(missing[:3])}'] if missing else []) + \
                   ([f'shape mismatch: {"; ".join(wrong_shape[:3])}'] if wrong_shape else [])
        raise ModelLoadError(source, ' and '.join(problems))


def model_weights(model):
    """{original variable name: array} of a Keras model: what a checkpoint or frozen graph holds."""
    scope = model_scope(model)
    return {original_name(scope, v.path): np.asarray(v.numpy()) for v in model.weights}


def model_scope(model):
    """The original variable scope of one of our Keras models (known by its name)."""
    if model.name not in ARCHITECTURES:
        raise ValueError(f'{model.name} is not one of the facenet networks ({", ".join(ARCHITECTURES)})')
    return importlib.import_module(ARCHITECTURES[model.name]).SCOPE


def get_model_filenames(model_dir):
    """(meta_file, ckpt_file) of a model folder (the original facenet.get_model_filenames).

    The `checkpoint` state file wins; otherwise the `model-*.ckpt-<step>` with the largest step.
    The original crashed with an UnboundLocalError when no checkpoint matched; this says so.
    """
    try:
        files = os.listdir(model_dir)
    except OSError as e:
        raise ModelLoadError(model_dir, f'cannot list the model directory ({e.strerror})') from None
    meta_files = sorted(f for f in files if f.endswith('.meta'))
    if not meta_files:
        raise ModelLoadError(model_dir, 'no meta file found in the model directory')
    if len(meta_files) > 1:
        raise ModelLoadError(model_dir, f'there should not be more than one meta file in the model directory '
                                        f'(found {", ".join(meta_files)})')
    state = tf.train.get_checkpoint_state(model_dir)
    if state and state.model_checkpoint_path:
        return meta_files[0], os.path.basename(state.model_checkpoint_path)
    steps = {}
    for f in files:
        match = re.match(r'(^model-[\w\- ]+.ckpt-(\d+))', f)
        if match:
            steps[match.group(1)] = int(match.group(2))
    if not steps:
        raise ModelLoadError(model_dir, 'no checkpoint (model-*.ckpt-<step>) found in the model directory')
    return meta_files[0], max(steps, key=steps.get)
