"""ONNX, INT8 ONNX and TFLite exports: written by facenet_tf2.export and freeze_graph.py, loaded by
load_model through ONNX Runtime / LiteRT, equal to the Keras network on real LFW faces, and the
one-line refusals (corrupt file, wrong input shape, calibration folder, missing runtime)."""
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from facenet_tf2.commands import freeze_graph
import reference_faces
from facenet_tf2 import runtimes
from facenet_tf2.errors import ModelLoadError, PathError, RuntimeMissing, UserError
from facenet_tf2.export import MIN_CALIBRATION_IMAGES, calibration_faces, onnx_model_proto, save_keras
from facenet_tf2.images import prewhiten, read_image
from facenet_tf2.model_io import load_keras_network, load_model
from models import squeezenet

TOLERANCE = 1e-5
onnx = pytest.importorskip('onnx', reason="the onnx extra is not installed (pip install -e '.[onnx]')")
pytest.importorskip('onnxruntime', reason="the onnx extra is not installed (pip install -e '.[onnx]')")
pytest.importorskip('tf2onnx', reason="the onnx extra is not installed (pip install -e '.[onnx]')")


def lfw_faces(lfw_dir, count):
    """`count` real faces as uint8 [count, 160, 160, 3]: the central 180x180 box of the first LFW
    images of different people, resized to 160 (the faces fill that box in the deep-funneled images)."""
    crops = []
    for folder in sorted(lfw_dir.iterdir())[:count]:
        image = Image.fromarray(read_image(sorted(folder.glob('*.jpg'))[0]))
        crops.append(np.asarray(image.crop((35, 35, 215, 215)).resize((160, 160), Image.BILINEAR)))
    return np.stack(crops)


@pytest.fixture(scope='module')
def inception_exports(frozen_model_pb, lfw_dir, reference_dir, tmp_path_factory):
    """The original's 20170512-110547 frozen graph as ONNX, and real prewhitened faces (TFLite is
    checked on the SqueezeNet below, and on all three pretrained models by benchmarks/check_int8_lfw.py)."""
    network, _ = load_keras_network(str(frozen_model_pb))
    out = tmp_path_factory.mktemp('inception_exports')
    (out / 'model.onnx').write_bytes(onnx_model_proto(network, 160, 'prewhiten').SerializeToString())
    marilyn, expected = reference_faces.marilyn(lfw_dir, reference_dir)
    faces = np.concatenate([marilyn, np.stack([prewhiten(face) for face in lfw_faces(lfw_dir, 4)])])
    return out, load_model(str(frozen_model_pb)), faces.astype(np.float32), expected


def test_onnx_equals_the_network_on_real_faces(inception_exports):
    out, keras_model, faces, marilyn_reference = inception_exports
    expected = keras_model(faces).numpy()
    check_runtime_model(out / 'model.onnx', faces, expected, marilyn_reference)


def check_runtime_model(path, faces, expected, first_reference, tolerance=TOLERANCE):
    """load_model(path) gives `expected` on `faces`, in any batch size and inside a tf.function."""
    name = path.name
    model = load_model(str(path))
    assert (model.embedding_size, model.image_size) == (expected.shape[1], 160), name
    embeddings = model(faces)
    assert isinstance(embeddings, tf.Tensor) and embeddings.shape == expected.shape, name
    assert np.abs(embeddings.numpy() - expected).max() < tolerance, name
    # batch size 1 after N: the batch is dynamic in both runtimes
    assert np.abs(model(faces[:1]).numpy()[0] - first_reference).max() < tolerance, name
    # inside a tf.function, as every EmbeddingModel
    traced = tf.function(lambda images, m=model: m(images))(tf.constant(faces[1:3]))
    assert np.abs(traced.numpy() - expected[1:3]).max() < tolerance, name


def test_onnx_interface_and_metadata(inception_exports):
    out, _, faces, _ = inception_exports
    proto = onnx.load(str(out / 'model.onnx'))
    (graph_input,), (graph_output,) = proto.graph.input, proto.graph.output
    assert graph_input.name == 'input' and graph_output.name == 'embeddings'
    assert [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim] == ['N', 160, 160, 3]
    assert [d.dim_param or d.dim_value for d in graph_output.type.tensor_type.shape.dim] == ['N', 128]
    assert runtimes.onnx_metadata(str(out / 'model.onnx')) == {
        'standardization': 'prewhiten', 'embedding_size': '128', 'image_size': '160'}
    model = load_model(str(out / 'model.onnx'))
    assert model.standardization == 'prewhiten'
    norms = np.linalg.norm(model(faces).numpy(), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    with pytest.raises(UserError, match=r'model\.onnx: the model takes images \[N, 160, 160, 3\], not \[2, 182'):
        model(np.zeros((2, 182, 182, 3), np.float32))


@pytest.fixture(scope='module')
def squeezenet_keras(tmp_path_factory):
    """A SqueezeNet with random weights as a .keras file: small, so freeze_graph.py's ONNX and INT8
    exports run in seconds."""
    network = squeezenet.build_model(dropout_keep_prob=1.0)
    rng = np.random.default_rng(5)
    for variable in network.weights:
        low = 0.5 if 'moving_variance' in variable.path else -0.1
        variable.assign(rng.uniform(low, low + 0.2 if low < 0 else 1.0, variable.shape).astype(np.float32))
    path = tmp_path_factory.mktemp('squeezenet') / 'squeezenet.keras'
    save_keras(network, str(path))
    return path, network


@pytest.fixture(scope='module')
def calibration_dir(lfw_dir, tmp_path_factory):
    """24 real faces in two 'person' folders, as align_dataset_mtcnn.py lays them out."""
    folder = tmp_path_factory.mktemp('calibration')
    for i, face in enumerate(lfw_faces(lfw_dir, 24)):
        (folder / f'person{i % 2}').mkdir(exist_ok=True)
        Image.fromarray(face).save(folder / f'person{i % 2}' / f'face{i:02d}.png')
    return folder


def test_freeze_graph_writes_onnx_int8_and_tflite(squeezenet_keras, calibration_dir, lfw_dir, tmp_path):
    path, network = squeezenet_keras
    freeze_graph.main(freeze_graph.parse_arguments([
        str(path), str(tmp_path / 'frozen.pb'), '--tflite', str(tmp_path / 'm.tflite'),
        '--onnx', str(tmp_path / 'm.onnx'), '--int8',
        str(tmp_path / 'm_int8.onnx'), '--calibration_dir', str(calibration_dir), '--calibration_images', '20',
        '--standardization', 'fixed']))
    faces = (lfw_faces(lfw_dir, 30)[24:].astype(np.float32) - 127.5) / 128  # not among the calibration faces
    expected = tf.math.l2_normalize(network(faces, training=False), axis=1, epsilon=1e-10).numpy()
    for name in ('m.onnx', 'm.tflite'):
        check_runtime_model(tmp_path / name, faces, expected, expected[0])
    float_model, int8_model = load_model(str(tmp_path / 'm.onnx')), load_model(str(tmp_path / 'm_int8.onnx'))
    assert float_model.standardization == int8_model.standardization == 'fixed'
    int8 = int8_model(faces).numpy()
    assert np.abs(int8 - expected).max() > 1e-4  # it is quantised, not a copy of the float model
    assert np.min(np.sum(int8 * expected, axis=1)) > 0.98
    recorded = runtimes.onnx_metadata(str(tmp_path / 'm_int8.onnx'))
    assert recorded['quantization'].endswith('MinMax on 20 faces') and recorded['embedding_size'] == '128'
    # MinMax calibration: the input's uint8 range spans the calibration faces' values (and 0)
    calibration = calibration_faces(str(calibration_dir), 20, 160, 'fixed')
    proto = onnx.load(str(tmp_path / 'm_int8.onnx'))
    initializers = {tensor.name: onnx.numpy_helper.to_array(tensor) for tensor in proto.graph.initializer}
    consumer = {node.input[0]: node for node in proto.graph.node if node.input}
    quantize_input = consumer['input']
    while quantize_input.op_type != 'QuantizeLinear':  # past tf2onnx's NHWC -> NCHW Transpose
        quantize_input = consumer[quantize_input.output[0]]
    expected_scale = (max(calibration.max(), 0) - min(calibration.min(), 0)) / 255
    np.testing.assert_allclose(initializers[quantize_input.input[1]], expected_scale, rtol=1e-5)


def test_corrupt_and_wrong_shape_onnx_are_refused(tmp_path):
    (tmp_path / 'corrupt.onnx').write_bytes(b'\x08\x07not an onnx model' * 10)
    with pytest.raises(ModelLoadError, match=r'corrupt\.onnx: not a valid ONNX model') as error:
        load_model(str(tmp_path / 'corrupt.onnx'))
    assert '\n' not in str(error.value)
    # channels first: a model of another kind
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node('Identity', ['x'], ['y'])], 'nchw',
        [onnx.helper.make_tensor_value_info('x', onnx.TensorProto.FLOAT, ['N', 3, 160, 160])],
        [onnx.helper.make_tensor_value_info('y', onnx.TensorProto.FLOAT, ['N', 3, 160, 160])])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid('', 17)]),
              str(tmp_path / 'nchw.onnx'))
    with pytest.raises(ModelLoadError, match=r"nchw\.onnx: the ONNX model's input is \['N', 3, 160, 160\], not "
                                             r'images \[N, H, W, 3\]'):
        load_model(str(tmp_path / 'nchw.onnx'))
    (tmp_path / 'corrupt.tflite').write_bytes(b'not a flatbuffer')
    with pytest.raises(ModelLoadError, match=r'corrupt\.tflite: not a valid TFLite model'):
        load_model(str(tmp_path / 'corrupt.tflite'))


def test_calibration_refusals_come_before_the_model_is_read(calibration_dir, tmp_path):
    """The model does not exist: each refusal is the calibration's, so it came first."""
    missing_model = str(tmp_path / 'no_such_model.keras')

    def run(*options):
        freeze_graph.main(freeze_graph.parse_arguments([missing_model, str(tmp_path / 'f.pb'), *options]))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(PathError, match=r'empty: no image files found, INT8 calibration needs 64'):
        run('--int8', str(tmp_path / 'q.onnx'), '--calibration_dir', str(tmp_path / 'empty'))
    with pytest.raises(PathError, match=r'calibration\d*: 24 image files found, INT8 calibration needs 64'):
        run('--int8', str(tmp_path / 'q.onnx'), '--calibration_dir', str(calibration_dir))
    with pytest.raises(PathError, match=r'no such calibration folder'):
        run('--int8', str(tmp_path / 'q.onnx'), '--calibration_dir', str(tmp_path / 'absent'))
    with pytest.raises(UserError, match=rf'--calibration_images 4 is too few .* at least {MIN_CALIBRATION_IMAGES}'):
        run('--int8', str(tmp_path / 'q.onnx'), '--calibration_dir', str(calibration_dir),
            '--calibration_images', '4')
    with pytest.raises(UserError, match=r'--int8 needs --calibration_dir'):
        run('--int8', str(tmp_path / 'q.onnx'))
    with pytest.raises(ModelLoadError, match=r'no_such_model\.keras: no such file'):
        run('--int8', str(tmp_path / 'q.onnx'), '--calibration_dir', str(calibration_dir),
            '--calibration_images', '20')


def test_missing_runtime_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # import onnxruntime now raises ImportError
    (tmp_path / 'm.onnx').write_bytes(b'')
    with pytest.raises(RuntimeMissing, match=r"onnxruntime is not installed; install the onnx extra: "
                                             r"pip install -e '\.\[onnx\]'"):
        load_model(str(tmp_path / 'm.onnx'))
    with pytest.raises(RuntimeMissing, match=r"onnxruntime is not installed"):
        freeze_graph.main(freeze_graph.parse_arguments([str(tmp_path / 'x.keras'), str(tmp_path / 'f.pb'),
                                                        '--int8', str(tmp_path / 'q.onnx')]))
