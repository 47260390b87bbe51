"""freeze_graph.py: an original checkpoint folder to a frozen .pb that original-style TF1 client
code loads, plus the SavedModel, TFLite and .keras exports, each reproducing the network."""
import numpy as np
import pytest
import tensorflow as tf

import facenet
from facenet_tf2.commands import freeze_graph
from facenet_tf2 import weights
from models import squeezenet
import reference_faces
from original_models import write_original_checkpoint

TOLERANCE = 1e-5


@pytest.fixture(scope='module')
def marilyn(lfw_dir, reference_dir):
    """The crop defined without the aligner (plus two noise images) and its reference embedding."""
    images, expected = reference_faces.marilyn(lfw_dir, reference_dir)
    noise = np.random.default_rng(2).standard_normal((2, 160, 160, 3)).astype(np.float32)
    return np.concatenate([images, noise]), expected


@pytest.fixture(scope='module')
def exported(frozen_model_pb, tmp_path_factory):
    """freeze_graph.py run on an original checkpoint folder of the 20170512-110547 model."""
    graph_weights = weights.frozen_graph_weights(weights.read_graph_def(str(frozen_model_pb)))
    model_dir = write_original_checkpoint(graph_weights, tmp_path_factory.mktemp('20170512-110547'))
    out = tmp_path_factory.mktemp('exported')
    freeze_graph.main(freeze_graph.parse_arguments([str(model_dir), str(out / 'frozen.pb')]))
    return model_dir, out / 'frozen.pb'


def original_client_embeddings(pb_file, images):
    """What original TF1 client code does with a frozen graph (compare.py, validate_on_lfw.py)."""
    with tf.Graph().as_default():
        graph_def = tf.compat.v1.GraphDef()
        with tf.io.gfile.GFile(pb_file, 'rb') as f:
            graph_def.ParseFromString(f.read())
        tf.compat.v1.import_graph_def(graph_def, input_map=None, name='')
        with tf.compat.v1.Session() as sess:
            graph = tf.compat.v1.get_default_graph()
            images_placeholder = graph.get_tensor_by_name('input:0')
            embeddings = graph.get_tensor_by_name('embeddings:0')
            phase_train_placeholder = graph.get_tensor_by_name('phase_train:0')
            return sess.run(embeddings, feed_dict={images_placeholder: images, phase_train_placeholder: False})


def test_original_client_loads_the_frozen_export(exported, marilyn):
    model_dir, frozen = exported
    images, expected = marilyn
    client = original_client_embeddings(str(frozen), images)
    assert client.shape == (3, 128)
    np.testing.assert_allclose(client[0], expected, atol=TOLERANCE, rtol=0)
    assert np.abs(client - facenet.load_model(str(model_dir))(images).numpy()).max() < TOLERANCE


def test_frozen_export_without_phase_train_still_loads(exported, marilyn, tmp_path):
    """An inference-optimised graph (BatchNorm folded, no phase_train at all) loads as well."""
    _, frozen = exported
    graph_def = weights.read_graph_def(str(frozen))
    stripped = tf.compat.v1.GraphDef()
    stripped.node.extend(node for node in graph_def.node if not node.name.startswith('phase_train'))
    (tmp_path / 'optimised.pb').write_bytes(stripped.SerializeToString())
    images, expected = marilyn
    np.testing.assert_allclose(facenet.load_model(str(tmp_path / 'optimised.pb'))(images[:1]).numpy()[0], expected,
                               atol=TOLERANCE, rtol=0)


@pytest.fixture(scope='module')
def squeezenet_exports(tmp_path_factory):
    """A SqueezeNet with random weights (BatchNorm statistics included, so folding matters) in an
    original checkpoint folder, exported in every format; small, so the exports are quick."""
    network = squeezenet.build_model(dropout_keep_prob=1.0)
    rng = np.random.default_rng(3)
    for variable in network.weights:
        low = 0.5 if 'moving_variance' in variable.path else -0.1
        variable.assign(rng.uniform(low, low + 0.2 if low < 0 else 1.0, variable.shape).astype(np.float32))
    model_dir = write_original_checkpoint(weights.model_weights(network), tmp_path_factory.mktemp('squeezenet'),
                                          subdir='squeezenet', step=7)
    out = tmp_path_factory.mktemp('squeezenet_exports')
    freeze_graph.main(freeze_graph.parse_arguments([
        str(model_dir), str(out / 'frozen.pb'), '--saved_model', str(out / 'saved_model'),
        '--tflite', str(out / 'model.tflite'), '--keras', str(out / 'model.keras')]))
    images = rng.standard_normal((2, 160, 160, 3)).astype(np.float32)
    expected = tf.math.l2_normalize(network(images, training=False), axis=1, epsilon=1e-10).numpy()
    return out, images, expected


def test_every_export_reproduces_the_network(squeezenet_exports):
    out, images, expected = squeezenet_exports
    assert np.abs(original_client_embeddings(str(out / 'frozen.pb'), images) - expected).max() < TOLERANCE
    for export in ('frozen.pb', 'saved_model', 'model.keras'):
        model = facenet.load_model(str(out / export))
        assert (model.embedding_size, model.image_size) == (128, 160), export
        assert np.abs(model(images).numpy() - expected).max() < TOLERANCE, export
    served = tf.saved_model.load(str(out / 'saved_model')).signatures['serving_default'](input=tf.constant(images))
    assert np.abs(served['embeddings'].numpy() - expected).max() < TOLERANCE

    interpreter = tf.lite.Interpreter(model_path=str(out / 'model.tflite'))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]['index'], images[:1])
    interpreter.invoke()
    assert np.abs(interpreter.get_tensor(interpreter.get_output_details()[0]['index']) - expected[:1]).max() < TOLERANCE
