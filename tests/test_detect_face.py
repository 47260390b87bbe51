"""align.detect_face: the helpers' numbers, the fixed bugs, weights from both sources, batching and
retracing, input conversions. Fidelity to the original's outputs is in test_align_dataset_mtcnn.py."""
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from align import detect_face
from facenet_tf2.detection import mtcnn
from facenet_tf2.images import read_image

MINSIZE, THRESHOLD, FACTOR = 20, [0.6, 0.7, 0.7], 0.709
SOME_LFW = ['Aaron_Eckhart/Aaron_Eckhart_0001.jpg', 'George_W_Bush/George_W_Bush_0016.jpg',
            'Serena_Williams/Serena_Williams_0003.jpg', 'Tony_Blair/Tony_Blair_0032.jpg']


@pytest.fixture(scope='module')
def networks():
    return detect_face.create_mtcnn(None, None)


@pytest.fixture(scope='module')
def lfw_images(lfw_dir):
    return [read_image(os.path.join(lfw_dir, path)) for path in SOME_LFW]


def detect(img, networks):
    return detect_face.detect_face(img, MINSIZE, *networks, THRESHOLD, FACTOR)


# --- helpers, against hand-computed numbers ---------------------------------------------------------

def test_nms_union_and_min_overlap():
    # A covers 10x10 = 100 px, B its left half (50 px): IoU 0.5, overlap by the smaller area 1.0.
    boxes = np.array([[0, 0, 9, 9, 0.9], [0, 0, 4, 9, 0.8], [50, 50, 59, 59, 0.7]], float)
    assert detect_face.nms(boxes, 0.7, 'Union').tolist() == [0, 1, 2]
    assert detect_face.nms(boxes, 0.7, 'Min').tolist() == [0, 2]
    assert detect_face.nms(boxes, 0.4, 'Union').tolist() == [0, 2]
    assert detect_face.nms(np.empty((0, 5)), 0.5, 'Union').size == 0


def test_nms_keeps_indices_past_int16():
    # The original stored picks as int16: the best box at index 40,000 came back as -25,536.
    boxes = np.tile([10.0, 10.0, 50.0, 50.0, 0.5], (40001, 1))
    boxes[40000, 4] = 0.9
    assert detect_face.nms(boxes, 0.5, 'Union').tolist() == [40000]


def test_rerec_squares_around_the_centre():
    boxes = np.array([[10.0, 20.0, 30.0, 60.0, 0.9]])
    np.testing.assert_array_equal(detect_face.rerec(boxes), [[0.0, 20.0, 40.0, 60.0, 0.9]])


def test_bbreg_offsets_scale_with_box_size():
    boxes = np.array([[10.0, 10.0, 29.0, 49.0, 0.9]])  # 20 wide, 40 high (inclusive pixels)
    reg = np.array([[0.1, -0.1, 0.5, 0.25]])
    np.testing.assert_allclose(detect_face.bbreg(boxes, reg), [[12.0, 6.0, 39.0, 59.0, 0.9]])


def test_pad_clips_to_the_image_with_one_based_offsets():
    boxes = np.array([[-5.0, 3.0, 14.0, 22.0], [90.0, 95.0, 109.0, 114.0]])  # 20x20 boxes, 100x100 image
    dy, edy, dx, edx, y, ey, x, ex, tmpw, tmph = detect_face.pad(boxes, 100, 100)
    assert tmpw.tolist() == [20, 20] and tmph.tolist() == [20, 20]
    assert dx.tolist() == [7, 1] and x.tolist() == [1, 90] and edx.tolist() == [20, 11] and ex.tolist() == [14, 100]
    assert dy.tolist() == [1, 1] and y.tolist() == [3, 95] and edy.tolist() == [20, 6] and ey.tolist() == [22, 100]


def test_generate_bounding_box_maps_cells_to_image_windows():
    # Maps in image orientation [H', W']; hits at (row 1, col 2) and (row 3, col 0).
    imap = np.zeros((4, 3), np.float32)
    imap[1, 2], imap[3, 0] = 0.9, 0.7
    reg = np.arange(4 * 3 * 4, dtype=np.float32).reshape(4, 3, 4) / 100
    boxes, _ = detect_face.generateBoundingBox(imap, reg, 0.5, 0.6)
    # Cell (row r, col c) at stride 2 and scale 0.5 covers x fix((2c+1)/0.5)..fix((2c+12)/0.5), same for y.
    # Sorted by x then y (the original's order).
    np.testing.assert_allclose(boxes[:, 0:5], [[2, 14, 24, 36, 0.7], [10, 6, 32, 28, 0.9]], rtol=1e-6)
    np.testing.assert_allclose(boxes[:, 5:9], [reg[3, 0], reg[1, 2]])


def test_generate_bounding_box_keeps_the_lone_hit_quirk():
    # With exactly one hit the original read its regression from the map flipped along x (kept: the
    # reference outputs depend on it).
    imap = np.zeros((4, 3), np.float32)
    imap[1, 0] = 0.9
    reg = np.arange(4 * 3 * 4, dtype=np.float32).reshape(4, 3, 4) / 100
    boxes, _ = detect_face.generateBoundingBox(imap, reg, 1.0, 0.6)
    np.testing.assert_allclose(boxes[0, 5:9], reg[1, 2])


def test_crops_survive_degenerate_and_outside_boxes():
    img = np.full((40, 60, 3), 200, np.uint8)
    boxes = np.array([[11.0, 11.0, 30.0, 30.0, 0], [100.0, 100.0, 119.0, 119.0, 0], [5.0, 5.0, 4.0, 4.0, 0]])
    crops, kept = mtcnn._crops(img, boxes, 24)  # pylint: disable=protected-access
    assert kept.tolist() == [True, True, False]  # a box of size zero is dropped (the original raised)
    np.testing.assert_allclose(crops[0], 200, atol=1e-4)
    assert np.all(crops[1] == 0)  # wholly outside: black (the original failed to broadcast)


# --- networks and weights --------------------------------------------------------------------------

def test_models_carry_the_original_layer_names():
    names = {layer.name for layer in detect_face.create_onet().layers}
    assert {'conv1', 'prelu1', 'conv5', 'prelu5', 'conv6-1', 'conv6-2', 'conv6-3', 'prob1'} <= names
    assert {'conv1', 'PReLU1', 'conv4-1', 'conv4-2', 'prob1'} <= {l.name for l in detect_face.create_pnet().layers}


def test_package_weights_are_the_original_npy_numbers(mtcnn_npy_dir):
    package, original = detect_face.load_weights(None), detect_face.load_weights(str(mtcnn_npy_dir))
    for net in ('pnet', 'rnet', 'onet'):
        assert package[net].keys() == original[net].keys()
        for layer, params in original[net].items():
            for name, value in params.items():
                np.testing.assert_array_equal(package[net][layer][name], value, err_msg=f'{net}/{layer}/{name}')


def test_both_weight_sources_give_the_same_detections(networks, mtcnn_npy_dir, lfw_images):
    original = detect_face.create_mtcnn(None, str(mtcnn_npy_dir))
    for img in lfw_images:
        boxes, points = detect(img, networks)
        boxes_npy, points_npy = detect(img, original)
        assert boxes.shape[0] >= 1
        np.testing.assert_array_equal(boxes, boxes_npy)
        np.testing.assert_array_equal(points, points_npy)


def test_bad_weight_folders_are_named(tmp_path, mtcnn_npy_dir):
    with pytest.raises(FileNotFoundError, match='det1.npy'):
        detect_face.load_weights(str(tmp_path))
    for name in ('det1.npy', 'det2.npy', 'det3.npy'):
        (tmp_path / name).write_bytes((mtcnn_npy_dir / name).read_bytes())
    (tmp_path / 'det2.npy').write_bytes(b'not a pickle')
    with pytest.raises(ValueError, match='det2.npy'):
        detect_face.load_weights(str(tmp_path))


def test_prelu_takes_the_original_formula_bit_for_bit_compiled_or_not():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    rng = np.random.default_rng(0)
    x = tf.constant(np.concatenate([rng.normal(0, 3, 4000), [0.0, -0.0, 1e-40, -1e-40]]).astype(np.float32)
                    .reshape(-1, 4))
    for layer in (mtcnn._PReLU(), mtcnn._PReLU(compiled=True)):
        layer.build(x.shape)
        layer.alpha.assign([-1.28, 0.25, 1.0117, 1.3])  # slopes below 0, inside [0, 1] and above 1, as in the weights
        original = tf.nn.relu(x) + tf.multiply(layer.alpha, -tf.nn.relu(-x))
        np.testing.assert_array_equal(layer(x).numpy(), original.numpy())


def test_compiled_networks_and_padded_blocks_give_the_plain_networks_values(lfw_images):
    """create_mtcnn's networks (XLA-compiled PReLUs when a shape recurs; R-Net and O-Net in padded blocks)
    against plain Keras models with the same weights, on a real pyramid level and real face crops."""
    weights = mtcnn.load_weights()
    pnet, rnet, onet = mtcnn.create_mtcnn(None, None)
    level = mtcnn._normalize_transposed(np.stack([mtcnn.imresample(img, (107, 107)) for img in lfw_images]))
    plain_pnet = mtcnn.create_pnet()
    mtcnn._set_weights(plain_pnet, weights['pnet'], 'pnet')
    expected = [out.numpy() for out in plain_pnet(level)]
    for _ in range(mtcnn._RECURRING + 1):  # the last runs go through the compiled graph
        for got, want in zip(pnet(level), expected):
            np.testing.assert_array_equal(got, want)
    boxes = np.array([[x, y, x + side, y + side] for x in range(40, 120, 9) for y in range(50, 130, 11)
                      for side in (40, 71)], float)  # 144 boxes over a real face
    for network, build, size in ((rnet, mtcnn.create_rnet, 24), (onet, mtcnn.create_onet, 48)):
        plain = build()
        mtcnn._set_weights(plain, weights[build.__name__[-4:]], build.__name__)
        crops = mtcnn._normalize_transposed(mtcnn._crops(lfw_images[0], boxes, size)[0])
        for count in (0, 1, 17, 128, 131, 144):  # empty, padded, whole blocks, blocks and a tail
            got = network(crops[:count])
            assert [out.shape[0] for out in got] == [count] * len(got)
            for out, want in zip(got, plain(crops[:count]) if count else []):
                # At 128 rows both run the same shapes; otherwise the plain model's odd batch sizes can
                # differ in the last bit, which the padded blocks avoid.
                if count == 128:
                    np.testing.assert_array_equal(out, want.numpy())
                else:
                    np.testing.assert_allclose(out, want.numpy(), rtol=1e-5, atol=1e-6)
        # A crop gets the same numbers alone as among many (the original scored crops image by image).
        for alone, among in zip(network(crops[16:17]), network(crops[:131])):
            np.testing.assert_array_equal(alone[0], among[16])


# --- detection -----------------------------------------------------------------------------------

def test_lfw_faces_boxes_and_landmarks(networks, lfw_images):
    for img in lfw_images:
        boxes, points = detect(img, networks)
        assert boxes.shape[1] == 5 and points.shape == (10, boxes.shape[0])
        best = np.argmax(boxes[:, 4])
        x1, y1, x2, y2, score = boxes[best]
        # LFW deep-funneled faces sit in the middle of the 250x250 image, about 100 px wide.
        assert score > 0.99 and 50 < x1 < 110 and 50 < y1 < 110 and 60 < x2 - x1 < 140
        xs, ys = points[0:5, best], points[5:10, best]  # x first, then y
        assert np.all((xs > x1) & (xs < x2) & (ys > y1) & (ys < y2))
        assert xs[0] < xs[1] and ys[2] < ys[3]  # left eye left of right eye, nose above mouth


def test_nothing_found_has_consistent_shapes(networks):
    boxes, points = detect(np.full((120, 160, 3), 128, np.uint8), networks)
    assert boxes.shape == (0, 5) and points.shape == (10, 0)
    boxes, points = detect(np.zeros((8, 8, 3), np.uint8), networks)  # smaller than one 12 px window
    assert boxes.shape == (0, 5) and points.shape == (10, 0)


def test_grayscale_and_rgba_are_converted(networks, lfw_images):
    gray = lfw_images[0].mean(axis=2).astype(np.uint8)
    expected = detect(np.repeat(gray[:, :, np.newaxis], 3, axis=2), networks)
    for variant in (gray, gray[:, :, np.newaxis]):
        np.testing.assert_array_equal(detect(variant, networks)[0], expected[0])
    rgba = np.dstack([lfw_images[1], np.full(lfw_images[1].shape[:2], 7, np.uint8)])
    np.testing.assert_array_equal(detect(rgba, networks)[0], detect(lfw_images[1], networks)[0])
    with pytest.raises(ValueError, match='shape'):
        detect(np.zeros((10, 10, 2), np.uint8), networks)


def test_batched_detection_equals_one_by_one_without_retracing(networks, lfw_images):
    # Mixed sizes: same-size images share P-Net calls, the rest get their own; results must not change.
    images = lfw_images + [lfw_images[0][:200, :180], lfw_images[2][25:, 25:]]
    batched = detect_face.detect_faces(images, MINSIZE, *networks, THRESHOLD, FACTOR)
    traces = [net.tracing_count() for net in networks]
    for img, (boxes, points) in zip(images, batched):
        single_boxes, single_points = detect(img, networks)
        np.testing.assert_array_equal(boxes, single_boxes)
        np.testing.assert_array_equal(points, single_points)
    assert traces == [1, 1, 1] and [net.tracing_count() for net in networks] == traces


def test_bulk_detect_face_keeps_each_images_results(networks, lfw_images):
    # An O-Net that rejects every candidate of the first image: the original then read the next
    # images' O-Net outputs at the wrong offset.
    first_count = []

    def onet_rejecting_first_image(batch):
        reg, landmarks, prob = networks[2](batch)
        prob[:first_count[0]] = [1.0, 0.0]
        return reg, landmarks, prob

    images = lfw_images[:3]
    ratio = 0.08  # minsize = int(0.08 * 250) = 20, as detect_face with MINSIZE
    stage_one = mtcnn._stage_one(images, [MINSIZE] * 3, networks[0], THRESHOLD[0], FACTOR)  # pylint: disable=protected-access
    stage_two = mtcnn._stage_two(images, stage_one, networks[1], THRESHOLD[1])  # pylint: disable=protected-access
    first_count.append(len(stage_two[0]))
    assert first_count[0] > 0
    results = detect_face.bulk_detect_face(images, ratio, networks[0], networks[1], onet_rejecting_first_image,
                                           THRESHOLD, FACTOR)
    assert results[0] is None
    for img, result in zip(images[1:], results[1:]):
        np.testing.assert_array_equal(result[0], detect(img, networks)[0])


def test_original_client_code_in_a_graph_block(networks, lfw_images):
    # compare.py and contributed/face.py built the networks inside a TF1 graph and session.
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    with tf.Graph().as_default():
        sess = tf.compat.v1.Session()
        with sess.as_default():
            graph_networks = detect_face.create_mtcnn(sess, None)
        boxes, points = detect(lfw_images[0], graph_networks)
    np.testing.assert_array_equal(boxes, detect(lfw_images[0], networks)[0])
    assert points.shape == (10, boxes.shape[0])


def test_two_threads_never_make_tf_warn_about_retracing():
    """The aligner runs two batches at a time on two threads. Calling a tf.function from both at
    its first call traced it in each, and as TF counts traces by code location (the three
    networks share one), every align run printed TF's "excessive retracing" warning. Each
    network is now traced once, when made, and run as that concrete function."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger('tensorflow')
    logger.addHandler(handler)
    folder = os.path.join(os.path.dirname(__file__), '..', 'data', 'images')
    images = [read_image(os.path.join(folder, name)) for name in sorted(os.listdir(folder)) if name.endswith('.jpg')]
    networks = detect_face.create_mtcnn(None, None)
    try:
        with ThreadPoolExecutor(2) as threads:
            results = list(threads.map(lambda batch: detect_face.detect_faces(batch, MINSIZE, *networks, THRESHOLD,
                                                                             FACTOR),
                                       [images[:3], images[3:], images[:2], images[2:]]))
    finally:
        logger.removeHandler(handler)
    assert len(results) == 4 and all(len(boxes) for result in results for boxes, _ in result)
    np.testing.assert_array_equal(results[0][0][0], results[2][0][0])  # the same image in either thread
    assert not [record.getMessage() for record in records if 'retracing' in record.getMessage()]
    assert [network.tracing_count() for network in networks] == [1, 1, 1]
