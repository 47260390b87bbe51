"""ONNX Runtime and TFLite (LiteRT) models behind load_model's EmbeddingModel interface.

`load_model('x.onnx')` and `load_model('x.tflite')` come here (facenet_tf2.model_io): the model
takes float images [N, H, W, 3] standardised as it expects and returns L2-normalised float32
embeddings [N, D] as a tf.Tensor, eagerly or inside a tf.function (through tf.numpy_function),
like every other EmbeddingModel. An ONNX model written by facenet_tf2.export records its
standardisation, which becomes the model's `standardization`; a TFLite file records none.

The runtimes are optional extras imported only when such a file is loaded: ONNX Runtime
(`pip install -e '.[onnx]'`) and, for TFLite, LiteRT (`ai-edge-litert`, extra `tflite`) where
installed, else TensorFlow's own tf.lite.Interpreter.
"""
import os

import numpy as np
import tensorflow as tf

from facenet_tf2.errors import ModelLoadError, UserError
from facenet_tf2.extras import available, require  # noqa: F401  (available: for callers and tests)
from facenet_tf2.embedding_model import EmbeddingModel

# module -> (extra, pip requirement) of the optional runtimes
class RuntimeEmbeddingModel(EmbeddingModel):
    """An EmbeddingModel whose function runs outside TensorFlow on NumPy arrays. The input side
    and batch shape are checked before running, so a wrong size is one line, not a runtime trace."""

    def __init__(self, run, embedding_size, image_size, source, runtime):
        self._run = run
        self.runtime = runtime
        super().__init__(self._embed, embedding_size, image_size, source)

    def _embed(self, images):
        embeddings = tf.numpy_function(lambda batch: self._run(np.ascontiguousarray(batch, np.float32)),
                                       [images], tf.float32, stateful=False)
        embeddings.set_shape([images.shape[0], self.embedding_size])
        return embeddings

    def __call__(self, images):
        shape = tuple(images.shape)
        side = self.image_size
        if len(shape) != 4 or shape[3] != 3 or (side and tuple(shape[1:3]) != (side, side)):
            raise UserError(f'{self.source}: the model takes images [N, {side or "H"}, {side or "W"}, 3], '
                            f'not {list(shape)}; give {side or "its"}-pixel RGB faces '
                            f'(e.g. --image_size {side or "N"})')
        return super().__call__(images)

    def __repr__(self):
        return f'{self.runtime}{super().__repr__()}'


def _first_line(error):
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _input_side(path, shape, what):
    """The square side of an input shape [N, H, W, 3] (None if dynamic); ModelLoadError otherwise."""
    if len(shape) != 4 or shape[3] != 3 or (isinstance(shape[1], int) and shape[1] != shape[2]):
        raise ModelLoadError(path, f'the {what} input is {list(shape)}, not images [N, H, W, 3]; not a facenet '
                                   'embedding model')
    return shape[1] if isinstance(shape[1], int) and shape[1] > 0 else None


def onnx_metadata(path):
    """The facenet.* metadata of an ONNX file ({} when it has none)."""
    onnx = require('onnx')
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and onnx's own: no common base
        raise ModelLoadError(path, f'not a valid ONNX model ({_first_line(e)})') from None
    from facenet_tf2.export.onnx import metadata  # pylint: disable=import-outside-toplevel
    return metadata(model)


def load_onnx(path, threads=None):
    """The EmbeddingModel of an ONNX file: ONNX Runtime on the CPU (all optimisations on)."""
    ort = require('onnxruntime')
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    except Exception as e:  # ORT raises its own Fail/InvalidProtobuf/InvalidGraph types
        raise ModelLoadError(path, f'not a valid ONNX model ({_first_line(e)})') from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise ModelLoadError(path, f'the model has {len(inputs)} inputs and {len(outputs)} outputs; a facenet '
                                   'model has one input (images) and an embeddings output')
    side = _input_side(path, inputs[0].shape, 'ONNX model\'s')
    names = [output.name for output in outputs]
    output_name = 'embeddings' if 'embeddings' in names else names[0]
    embedding_size = outputs[names.index(output_name)].shape[-1]
    recorded = {prop: value for prop, value in session.get_modelmeta().custom_metadata_map.items()
                if prop.startswith('facenet.')}
    if not isinstance(embedding_size, int):
        embedding_size = int(recorded.get('facenet.embedding_size', 0))
    side = side or int(recorded.get('facenet.image_size', 0)) or None
    if not embedding_size:
        probe = np.zeros([1, side or 160, side or 160, 3], np.float32)
        embedding_size = session.run([output_name], {inputs[0].name: probe})[0].shape[-1]
    input_name = inputs[0].name

    def run(images):
        return session.run([output_name], {input_name: images})[0].astype(np.float32, copy=False)
    model = RuntimeEmbeddingModel(run, embedding_size, side, path, 'onnxruntime:')
    model.standardization = recorded.get('facenet.standardization')
    model.session = session
    return model


def tflite_interpreter_class():
    """LiteRT's Interpreter where ai-edge-litert is installed, else tf.lite.Interpreter."""
    if available('ai_edge_litert'):
        from ai_edge_litert.interpreter import Interpreter  # pylint: disable=import-outside-toplevel
        return Interpreter
    return tf.lite.Interpreter


def load_tflite(path, threads=None):
    """The EmbeddingModel of a .tflite file; the batch dimension is resized to each call's."""
    try:
        interpreter = tflite_interpreter_class()(model_path=path, num_threads=threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise ModelLoadError(path, f'not a valid TFLite model ({_first_line(e)})') from None
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelLoadError(path, f'the model has {len(inputs)} inputs and {len(outputs)} outputs; a facenet '
                                   'model has one of each')
    side = _input_side(path, [int(d) for d in inputs[0]['shape']], 'TFLite model\'s')
    input_index, output_index = inputs[0]['index'], outputs[0]['index']
    state = {'batch': int(inputs[0]['shape'][0])}

    def run(images):
        if images.shape[0] != state['batch']:
            interpreter.resize_tensor_input(input_index, list(images.shape))
            interpreter.allocate_tensors()
            state['batch'] = images.shape[0]
        interpreter.set_tensor(input_index, images)
        interpreter.invoke()
        return interpreter.get_tensor(output_index).astype(np.float32, copy=True)
    name = 'litert:' if available('ai_edge_litert') else 'tflite:'
    return RuntimeEmbeddingModel(run, int(outputs[0]['shape'][-1]), side, path, name)


def load_runtime_model(kind, path):
    """load_model for kind 'onnx' or 'tflite' (see facenet_tf2.model_io.find_model)."""
    return load_onnx(path) if kind == 'onnx' else load_tflite(path)


def recorded_standardization(model):
    """The standardisation an ONNX file records (facenet_tf2.export), else None."""
    path = os.path.expanduser(str(model))
    if not (path.lower().endswith('.onnx') and os.path.isfile(path) and available('onnx')):
        return None
    return onnx_metadata(path).get('standardization')
