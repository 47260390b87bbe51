"""Writing a Keras facenet network as a frozen GraphDef, a SavedModel, a TFLite model or a .keras file.

The frozen graph is what original-style TF1 client code loads: it imports the GraphDef and runs
`embeddings:0` feeding `input:0` (float [N, H, W, 3]) and `phase_train:0` (bool; default False,
and the exported graph is the inference network whatever is fed). BatchNorm is folded into the
convolutions (facenet_tf2.inference), as in an inference-optimised graph.
Every file is written under a temporary name and moved into place when complete.
"""
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import \
    convert_variables_to_constants_v2  # pylint: disable=no-name-in-module

from facenet_tf2.files import atomic_directory, atomic_path, write_bytes_atomically
from facenet_tf2.inference import fold_batch_norm
from facenet_tf2.nets.layers import l2_normalize
from facenet_tf2.tf1_graphs import frozen_embedding_graph_def


def _embedding_function(model, image_size):
    @tf.function(input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name='input')])
    def embeddings(images):
        return tf.identity(l2_normalize(model(images, training=False)), name='embeddings')
    return embeddings


def _frozen_function(model, image_size):
    """The embedding ConcreteFunction of the folded network with its weights made constants."""
    folded = fold_batch_norm(model)  # referenced until the constants are taken: traces hold weak references
    return convert_variables_to_constants_v2(_embedding_function(folded, image_size).get_concrete_function())


def frozen_graph_def(model, image_size=160):
    """The GraphDef of the folded network with constants for the weights and the original's
    tensor names: Placeholder `input`, PlaceholderWithDefault `phase_train` (False), `embeddings`."""
    folded = fold_batch_norm(model)
    return frozen_embedding_graph_def(lambda images: l2_normalize(folded(images, training=False)), image_size)


def write_frozen_graph(model, output_file, image_size=160):
    graph_def = frozen_graph_def(model, image_size)
    write_bytes_atomically(output_file, graph_def.SerializeToString())
    return graph_def


class EmbeddingModule(tf.Module):
    """What a SavedModel export holds: `embed(images)` -> embeddings, and the sizes."""

    def __init__(self, model, image_size):
        super().__init__()
        self.network = model
        self.image_size = tf.Variable(image_size or 0, trainable=False)
        self.embedding_size = tf.Variable(model.output_shape[-1], trainable=False)
        self.embed = tf.function(
            lambda images: l2_normalize(self.network(images, training=False)),
            input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name='input')])


def save_embedding_saved_model(model, export_dir, image_size=160):
    """A SavedModel of the folded network: `embed` (also the serving_default signature, output
    `embeddings`) plus `image_size` and `embedding_size`; facenet.load_model reads it."""
    module = EmbeddingModule(fold_batch_norm(model), image_size)
    signature = module.embed.get_concrete_function()
    serving = tf.function(lambda input: {'embeddings': signature(input)},  # noqa: A002 (the original tensor name)
                          input_signature=signature.structured_input_signature[0])
    with atomic_directory(export_dir) as temporary:
        tf.saved_model.save(module, temporary, signatures={'serving_default': serving})


def write_tflite(model, output_file, image_size=160):
    """A float32 TFLite model of the folded network (input [1, image_size, image_size, 3])."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions([_frozen_function(model, image_size)])
    write_bytes_atomically(output_file, converter.convert())


def save_keras(model, output_file):
    """The trainable Keras network (BatchNorm not folded) as a .keras file."""
    with atomic_path(output_file) as temporary:
        model.save(temporary, overwrite=True)
