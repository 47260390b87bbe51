"""A facenet network as a float32 ONNX model, converted with tf2onnx from its frozen graph.

The ONNX model has one input `input`, float [N, H, W, 3] (N dynamic), standardised as the model
expects, and one output `embeddings`, float [N, D], L2-normalised: the same function as the frozen
.pb of facenet_tf2.export.tensorflow (BatchNorm folded). Its metadata (`metadata_props`) records
what a runtime needs to feed it: `facenet.standardization` ('fixed' or 'prewhiten'),
`facenet.embedding_size` and `facenet.image_size`; facenet_tf2.runtimes reads them back.
"""
from facenet_tf2.files import write_bytes_atomically

INPUT_NAME = 'input'
OUTPUT_NAME = 'embeddings'
OPSET = 17
METADATA_PREFIX = 'facenet.'


def onnx_model_proto(network=None, image_size=160, standardization='prewhiten', graph_def=None, opset=OPSET):
    """The float32 ONNX ModelProto of a Keras prelogits `network` (or of `graph_def`, a frozen
    facenet GraphDef with `input` and `embeddings`, when no network is given)."""
    from facenet_tf2.extras import require  # pylint: disable=import-outside-toplevel
    require('tf2onnx', 'onnx')
    import tf2onnx  # pylint: disable=import-outside-toplevel
    from facenet_tf2.export.tensorflow import frozen_graph_def  # pylint: disable=import-outside-toplevel
    if graph_def is None:
        graph_def = frozen_graph_def(network, image_size)
    model, _ = tf2onnx.convert.from_graph_def(
        graph_def, input_names=[INPUT_NAME + ':0'], output_names=[OUTPUT_NAME + ':0'], opset=opset,
        tensors_to_rename={INPUT_NAME + ':0': INPUT_NAME, OUTPUT_NAME + ':0': OUTPUT_NAME})
    # tf2onnx names the unknown batch dimension unk__<n>; one name for input and output says they match.
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = 'N'
    embedding_size = model.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    set_metadata(model, standardization=standardization, embedding_size=embedding_size, image_size=image_size)
    model.producer_name, model.doc_string = 'facenet-tf2', 'facenet embeddings: input -> L2-normalised embeddings'
    return model


def set_metadata(model, **values):
    """Records `values` as facenet.<key> metadata of an ONNX ModelProto, replacing older ones."""
    keys = {METADATA_PREFIX + key for key in values}
    kept = [(prop.key, prop.value) for prop in model.metadata_props if prop.key not in keys]
    del model.metadata_props[:]
    for key, value in kept + [(METADATA_PREFIX + key, str(value)) for key, value in values.items()]:
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value


def metadata(model):
    """{key: value} of the facenet.<key> metadata of an ONNX ModelProto (values as strings)."""
    return {prop.key[len(METADATA_PREFIX):]: prop.value for prop in model.metadata_props
            if prop.key.startswith(METADATA_PREFIX)}


def write_onnx(network, output_file, image_size=160, standardization='prewhiten'):
    """Writes the float32 ONNX model of `network` (see onnx_model_proto) atomically; returns it."""
    model = onnx_model_proto(network, image_size, standardization)
    write_bytes_atomically(output_file, model.SerializeToString())
    return model
