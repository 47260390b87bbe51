"""facenet.load_model on the original-format frozen graph, against the original's own embeddings."""
import numpy as np
import pytest
import tensorflow as tf

import facenet
from facenet_tf2 import model_io, weights
import reference_faces
from original_models import keras_facenet_h5, write_original_checkpoint

# The bound on unit-length embeddings; reordered float32 arithmetic gives a few 1e-7.
TOLERANCE = 1e-5


@pytest.fixture(scope='module')
def graph_model(frozen_model_pb):
    return facenet.load_model(str(frozen_model_pb))


@pytest.fixture(scope='module')
def keras_model(frozen_model_pb):
    """The Keras Inception-ResNet-v1 with the frozen graph's constants, as load_model runs it."""
    network, image_size = model_io.load_keras_network(str(frozen_model_pb))
    return model_io.embedding_model_from_keras(network, str(frozen_model_pb), image_size)


@pytest.fixture(scope='module')
def marilyn(lfw_dir, reference_dir):
    return reference_faces.marilyn(lfw_dir, reference_dir)


def test_frozen_graph_reproduces_reference_embedding(graph_model, marilyn):
    images, expected = marilyn
    assert graph_model.embedding_size == 128 and graph_model.image_size == 160
    assert graph_model.standardization is None  # a path does not say; a pretrained name does
    np.testing.assert_allclose(graph_model(images).numpy()[0], expected, atol=TOLERANCE, rtol=0)


def test_frozen_graph_and_keras_model_reproduce_the_reference_crops(lfw_dir, reference_dir, graph_model, keras_model):
    names, crops, expected = reference_faces.aligned_reference_crops(lfw_dir, reference_dir)
    assert len(names) >= 4, 'the aligner reproduced too few of the original crops to check the embeddings'
    assert np.abs(graph_model(crops).numpy() - expected).max() < TOLERANCE
    assert np.abs(keras_model(crops).numpy() - expected).max() < TOLERANCE


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


def test_keras_model_from_frozen_graph_matches_the_graph(keras_model, graph_model, marilyn):
    images, expected = marilyn
    noise = np.random.default_rng(0).standard_normal((3, 160, 160, 3)).astype(np.float32)
    batch = np.concatenate([images, noise])
    assert (keras_model.embedding_size, keras_model.image_size) == (128, 160)
    assert np.abs(keras_model(batch).numpy() - graph_model(batch).numpy()).max() < TOLERANCE
    np.testing.assert_allclose(keras_model(images).numpy()[0], expected, atol=TOLERANCE, rtol=0)


@pytest.fixture(scope='module')
def checkpoint_dir(frozen_model_pb, tmp_path_factory):
    graph_weights = weights.frozen_graph_weights(weights.read_graph_def(str(frozen_model_pb)))
    return write_original_checkpoint(graph_weights, tmp_path_factory.mktemp('20170512-110547'))


def test_checkpoint_folder_is_read_by_variable_name(checkpoint_dir, frozen_model_pb):
    """The checkpoint holds the original's extra variables too (EMA copies, logits, global_step);
    the network's variables are read by name and equal the frozen graph's constants. (Loading the
    folder end to end is in test_freeze_graph.py.)"""
    assert facenet.get_model_filenames(str(checkpoint_dir)) == ('model-20170512-110547.meta',
                                                                'model-20170512-110547.ckpt-80000')
    prefix = str(checkpoint_dir / 'model-20170512-110547.ckpt-80000')
    assert 'InceptionResnetV1/Repeat/block35_1/Branch_0/Conv2d_1x1/weights' in facenet.list_variables(prefix)
    original = weights.frozen_graph_weights(weights.read_graph_def(str(frozen_model_pb)))
    loaded = weights.checkpoint_weights(prefix)
    assert set(loaded) - set(original) == {'global_step', 'Logits/weights',
                                           'InceptionResnetV1/Conv2d_1a_3x3/weights/ExponentialMovingAverage'}
    assert all(np.array_equal(loaded[name], original[name]) for name in original)
    assert weights.detect_architecture(loaded)[1] == 128


def test_get_model_filenames_without_state_file_takes_the_latest_step(tmp_path):
    for name in ('model-x.meta', 'model-x.ckpt-900.index', 'model-x.ckpt-1000.index', 'model-x.ckpt-1000.data-0',
                 'model-x.ckpt-99.index'):
        (tmp_path / name).write_bytes(b'')
    assert facenet.get_model_filenames(str(tmp_path)) == ('model-x.meta', 'model-x.ckpt-1000')
    for name in ('model-x.ckpt-900.index', 'model-x.ckpt-1000.index', 'model-x.ckpt-1000.data-0',
                 'model-x.ckpt-99.index'):
        (tmp_path / name).unlink()
    with pytest.raises(facenet.ModelLoadError, match='no checkpoint'):
        facenet.get_model_filenames(str(tmp_path))


def test_keras2_h5_conversion_matches_the_frozen_graph(graph_model, marilyn):
    h5 = keras_facenet_h5()
    model = facenet.load_model(str(h5))
    assert (model.embedding_size, model.image_size) == (128, 160)
    images, expected = marilyn
    noise = np.random.default_rng(1).standard_normal((2, 160, 160, 3)).astype(np.float32)
    batch = np.concatenate([images.astype(np.float32), noise])
    assert np.abs(model(batch).numpy() - graph_model(batch).numpy()).max() < TOLERANCE
    np.testing.assert_allclose(model(images).numpy()[0], expected, atol=TOLERANCE, rtol=0)


def test_keras_facenet_layer_names_map_onto_original_names():
    scope = weights._keras_facenet_scope  # pylint: disable=protected-access
    assert scope('Conv2d_4b_3x3_BatchNorm') == 'Conv2d_4b_3x3/BatchNorm'
    assert scope('Block35_5_Branch_2_Conv2d_0c_3x3') == 'Repeat/block35_5/Branch_2/Conv2d_0c_3x3'
    assert scope('Block17_10_Conv2d_1x1') == 'Repeat_1/block17_10/Conv2d_1x1'
    assert scope('Block8_6_Branch_1_Conv2d_0c_3x1_BatchNorm') == 'Block8/Branch_1/Conv2d_0c_3x1/BatchNorm'
    assert scope('Mixed_7a_Branch_3_MaxPool_1a_3x3') == 'Mixed_7a/Branch_3/MaxPool_1a_3x3'
    assert scope('Bottleneck_BatchNorm') == 'Bottleneck/BatchNorm'


def test_bfloat16_precision_stays_close_to_the_reference(frozen_model_pb, lfw_dir, reference_dir, tmp_path):
    fast = facenet.load_model(str(frozen_model_pb), precision='bfloat16')
    names, crops, expected = reference_faces.aligned_reference_crops(lfw_dir, reference_dir)
    embeddings = fast(crops).numpy()
    assert embeddings.dtype == np.float32 and fast.embedding_size == 128
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)
    difference = np.abs(embeddings - expected).max()
    assert 1e-5 < difference < 2e-2  # really computed in bfloat16, and still the same faces
    with pytest.raises(ValueError, match='precision must be one of'):
        facenet.load_model(str(frozen_model_pb), precision='float16')
    (tmp_path / 'saved_model.pb').write_bytes(b'')
    with pytest.raises(facenet.ModelLoadError, match='needs the network'):
        facenet.load_model(str(tmp_path), precision='bfloat16')


def test_original_tf1_session_pattern_with_a_frozen_graph(frozen_model_pb, marilyn):
    """The original's client code runs unchanged: load_model imports the graph into the default
    graph of the session, and the tensors are found by name."""
    images, expected = marilyn
    batch = np.concatenate([images, images[:, :, ::-1]])
    with tf.Graph().as_default():
        with tf.compat.v1.Session() as sess:
            facenet.load_model(str(frozen_model_pb))
            graph = tf.compat.v1.get_default_graph()
            images_placeholder = graph.get_tensor_by_name('input:0')
            phase_train_placeholder = graph.get_tensor_by_name('phase_train:0')
            emb = sess.run('embeddings:0', feed_dict={images_placeholder: batch, phase_train_placeholder: False})
            assert graph.get_tensor_by_name('embeddings:0').shape[-1] == 128
    np.testing.assert_allclose(emb[0], expected, atol=TOLERANCE, rtol=0)
    assert 0.05 < np.sum(np.square(emb[0] - emb[1])) < 1.0

