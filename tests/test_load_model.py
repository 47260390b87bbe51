"""facenet.load_model on the original-format frozen graph, against the original's own embeddings."""
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import facenet
from facenet_tf2 import model_io, weights
from facenet_tf2.images import prewhiten, read_image

# Each embedding is unit length, so 1e-5 is a few ULPs of float32 arithmetic summed over the network.
TOLERANCE = 1e-5


@pytest.fixture(scope='module')
def graph_model(frozen_model_pb):
    return facenet.load_model(str(frozen_model_pb))


@pytest.fixture(scope='module')
def marilyn(lfw_dir, reference_dir):
    """The one reference crop defined without the aligner: the central (35, 35, 215, 215) box of
    Marilyn_Monroe_0001 resized to 160x160 with PIL bilinear, prewhitened; and its reference embedding."""
    image = Image.fromarray(read_image(lfw_dir / 'Marilyn_Monroe' / 'Marilyn_Monroe_0001.jpg'))
    crop = np.asarray(image.crop((35, 35, 215, 215)).resize((160, 160), Image.BILINEAR))
    reference = np.load(reference_dir / 'original_embeddings_20170512-110547_lfw.npz')
    index = list(reference['paths']).index('Marilyn_Monroe/Marilyn_Monroe_0001.png')
    return prewhiten(crop)[np.newaxis], reference['embeddings'][index]


def test_frozen_graph_reproduces_reference_embedding(graph_model, marilyn):
    images, expected = marilyn
    assert graph_model.embedding_size == 128 and graph_model.image_size == 160
    np.testing.assert_allclose(graph_model(images).numpy()[0], expected, atol=TOLERANCE, rtol=0)


def test_frozen_graph_callable_works_inside_tf_function_and_any_batch(graph_model, marilyn):
    images, expected = marilyn
    batch = np.concatenate([images, images[:, :, ::-1], images])

    @tf.function
    def distances(x):
        embeddings = graph_model(x)
        return tf.reduce_sum(tf.square(embeddings[0] - embeddings), axis=1)

    result = distances(tf.constant(batch, tf.float32)).numpy()
    assert result[0] == 0 and result[2] < 1e-10 and 0.05 < result[1] < 1.0   # a mirrored face is close, not equal
    np.testing.assert_allclose(graph_model(batch.astype(np.float64)).numpy()[2], expected, atol=TOLERANCE, rtol=0)


def test_phase_train_is_fed_false(frozen_model_pb, marilyn):
    """With phase_train True the graph would use batch statistics (and dropout): a single image
    gives a very different embedding. Feeding it True through input_map proves which one we use."""
    images, expected = marilyn
    batch = np.concatenate([images, images[:, ::-1]])
    training = facenet.load_model(str(frozen_model_pb), input_map={'phase_train': True})
    assert np.abs(training(batch).numpy()[0] - expected).max() > 0.01


def test_load_model_errors_name_the_path(tmp_path, frozen_model_pb):
    missing = tmp_path / 'nowhere.pb'
    with pytest.raises(facenet.ModelLoadError, match='nowhere.pb: no such file'):
        facenet.load_model(str(missing))

    other_graph = tf.compat.v1.GraphDef()
    other_graph.node.add(name='input', op='Placeholder').attr['dtype'].type = tf.float32.as_datatype_enum
    (tmp_path / 'other.pb').write_bytes(other_graph.SerializeToString())
    with pytest.raises(facenet.ModelLoadError, match=r'other.pb: the graph has no `embeddings` tensor'):
        facenet.load_model(str(tmp_path / 'other.pb'))

    (tmp_path / 'garbage.pb').write_bytes(b'\xff' * 100)
    with pytest.raises(facenet.ModelLoadError, match='garbage.pb: not a frozen GraphDef'):
        facenet.load_model(str(tmp_path / 'garbage.pb'))

    two_meta = tmp_path / 'two_meta'
    two_meta.mkdir()
    (two_meta / 'model-a.meta').write_bytes(b'')
    (two_meta / 'model-b.meta').write_bytes(b'')
    with pytest.raises(facenet.ModelLoadError, match='two_meta: there should not be more than one meta file'):
        facenet.load_model(str(two_meta))

    with pytest.raises(facenet.ModelLoadError, match='input_map cannot replace `input`'):
        facenet.load_model(str(frozen_model_pb), input_map={'input:0': np.zeros((1, 160, 160, 3), np.float32)})


def test_keras_model_from_frozen_graph_matches_the_graph(frozen_model_pb, graph_model, marilyn):
    graph_def = weights.read_graph_def(str(frozen_model_pb))
    keras_model = weights.build_keras_model(weights.frozen_graph_weights(graph_def), image_size=160)
    model = model_io.embedding_model_from_keras(keras_model, str(frozen_model_pb))
    images, expected = marilyn
    noise = np.random.default_rng(0).standard_normal((3, 160, 160, 3)).astype(np.float32)
    batch = np.concatenate([images.astype(np.float32), noise])
    assert np.abs(model(batch).numpy() - graph_model(batch).numpy()).max() < TOLERANCE
    np.testing.assert_allclose(model(images).numpy()[0], expected, atol=TOLERANCE, rtol=0)
