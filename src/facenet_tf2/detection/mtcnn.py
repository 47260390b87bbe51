"""MTCNN face detection and landmarks (Zhang et al. 2016) on TensorFlow 2, faithful to the original
facenet `src/align/detect_face.py` (itself a port of kpzhang93's Caffe/MATLAB code).

The original's API, unchanged for client code:

    pnet, rnet, onet = create_mtcnn(sess=None, model_path=None)
    bounding_boxes, points = detect_face(img, minsize, pnet, rnet, onet, threshold, factor)
    results = bulk_detect_face(images, detection_window_size_ratio, pnet, rnet, onet, threshold, factor)

`bounding_boxes` is float64 [N, 5] (x1, y1, x2, y2, score) in image pixels, `points` is [10, N]
(x1..x5, y1..y5). The helpers `generateBoundingBox`, `nms`, `pad`, `rerec`, `bbreg` and `imresample`
keep their names and numbers.

Added, and what the two functions above and `align_dataset_mtcnn` run on:

    results = detect_faces(images, minsize, pnet, rnet, onet, threshold, factor)

detects faces in many images at once, returning one (bounding_boxes, points) per image with exactly the
numbers `detect_face` gives for each image alone. It runs P-Net once per pyramid size over all images
of that size, R-Net and O-Net once over all candidate boxes of all images, so a batch of LFW images
costs a few network calls instead of ten per image. `minsize` may be one number or one per image.

The networks are Keras models (`create_pnet`, `create_rnet`, `create_onet`; layers named after the
original variables) called through one `tf.function` each whose input signature leaves batch and image
size dynamic, so nothing retraces per image or pyramid size, on CPU or GPU alike. Where TensorFlow has
XLA, the PReLUs on the largest activations run as XLA-fused loops (one pass over memory instead of four;
the same values): R-Net's and O-Net's first, their crops fed in blocks padded to a few batch sizes so
that each compiles a few times per process, and P-Net's three for input shapes that recur (a dataset
of one image size), never once per image of a dataset of many sizes.

Weights (`load_weights`): by default the `mtcnn` pip package's `mtcnn/assets/weights/{p,r,o}net.lz4`
(joblib + lz4 lists of Keras weights: the original numbers with the kernels' spatial axes swapped);
or a folder holding the original `det1.npy`, `det2.npy`, `det3.npy`.

Numerics follow the original step by step: pyramid by cv2 INTER_AREA on the uint8 image, input
(x - 127.5) * 0.0078125, images fed transposed (width first) as the Caffe-born weights expect, the
original's softmax formula, NumPy float64 box arithmetic with the same casts, `np.fix` and sort order.

Bugs of the original fixed here (each noted where it is fixed):
- `nms` kept picks in int16, wrapping round past 32,767 candidates (large images); it also compared
  method strings with `is`.
- A candidate box reaching wholly outside the image, or of size zero, made the original fail
  (`return np.empty()` raises TypeError, or a broadcast error): such boxes are dropped or cropped as
  black, and detection goes on.
- `bulk_detect_face` lost its place in the O-Net output after an image whose candidates all failed
  O-Net, mixing up the results of the images after it; here every image gets its own results.
- With nothing found the original returned (0, 9) boxes and a 1-d `points`; here (0, 5) and (10, 0).
- Grayscale, single-channel and RGBA input is converted to RGB instead of failing.
"""
import collections
import importlib.util
import os

import cv2
import joblib
import keras
import numpy as np
import tensorflow as tf

# Pyramid pixels per P-Net call, which bound memory on huge images (P-Net's first layers hold about 100
# bytes per input pixel).
_MAX_PNET_PIXELS = 1 << 23
# R-Net and O-Net run on blocks of at most this many crops, a shorter last block padded to a multiple
# of the second number: at most 8 batch shapes each, so their XLA-compiled prelu1 compiles at most 8
# times per process (10-40 ms each), not once per candidate count, and pads a block by 3-6% on average.
_BLOCKS = {'rnet': (256, 32), 'onet': (128, 16)}
# Up to this many boxes, nms computes all pairwise overlaps at once (n^2 floats).
_NMS_PAIRWISE_MAX = 1000


@tf.function(jit_compile=True)
def _compiled_prelu(inputs, alpha):
    """The PReLU formula below as one XLA-fused loop: one pass over the activations instead of four (TF
    runs each elementwise op as its own pass over memory)."""
    return tf.maximum(inputs, 0.0) + alpha * tf.minimum(inputs, 0.0)


class _PReLU(keras.layers.Layer):
    """The original prelu, relu(x) + alpha * -relu(-x), one alpha per channel (last axis).

    Computed as max(x, 0) + alpha * min(x, 0): -relu(-x) is exactly min(x, 0), so the values are the
    original's bit for bit (one of the two terms is always zero, so a fused multiply-add rounds the same
    too) in four elementwise ops instead of six. compiled: through `_compiled_prelu`, which XLA compiles
    once per shape, so only where shapes are few: R-Net and O-Net fed in padded blocks
    (`_network_function`), P-Net on recurring shapes (`_compiled_when_recurring`).
    """

    def __init__(self, compiled=False, **kwargs):
        super().__init__(**kwargs)
        self.compiled = compiled

    def build(self, input_shape):
        self.alpha = self.add_weight(name='alpha', shape=(input_shape[-1],), initializer='zeros')

    def call(self, inputs):
        if self.compiled:
            return _compiled_prelu(inputs, tf.convert_to_tensor(self.alpha))
        return tf.maximum(inputs, 0.0) + self.alpha * tf.minimum(inputs, 0.0)

    def compute_output_shape(self, input_shape):
        return input_shape


class _Softmax(keras.layers.Layer):
    """The original's softmax formula (max-shifted exp over the sum), kept for bit-equal scores."""

    def __init__(self, axis, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs):
        shifted = tf.exp(inputs - tf.reduce_max(inputs, self.axis, keepdims=True))
        return shifted / tf.reduce_sum(shifted, self.axis, keepdims=True)


def _conv_stack(x, layers, prelu_prefix, compiled_prelus=0):
    """conv{k} -> {prelu_prefix}{k} [-> pool{k}] for each (filters, kernel size, pool) in `layers`, k from 1;
    pool is (size, strides, padding) or None. The first `compiled_prelus` PReLUs are XLA-compiled."""
    for k, (filters, size, pool) in enumerate(layers, 1):
        x = keras.layers.Conv2D(filters, size, padding='valid', name=f'conv{k}')(x)
        x = _PReLU(k <= compiled_prelus, name=f'{prelu_prefix}{k}')(x)
        if pool:
            x = keras.layers.MaxPooling2D(pool[0], pool[1], padding=pool[2], name=f'pool{k}')(x)
    return x


def _dense_prelu(x, units, k):
    """Flatten, then the dense layer conv{k} and prelu{k}. Flattening the transposed feature map in C
    order is the layout the original dense weights expect."""
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(units, name=f'conv{k}')(x)
    return _PReLU(name=f'prelu{k}')(x)


def create_pnet(compiled_prelu=False):
    """P-Net (proposal network), fully convolutional on any image size.

    Input: transposed images [N, W, H, 3]. Outputs: box regression `conv4-2` [N, W', H', 4] and face
    probability `prob1` [N, W', H', 2], one cell per 12x12 window at stride 2. compiled_prelu: its three
    PReLUs as XLA-fused loops (the same values; one compilation per input shape).
    """
    data = keras.Input((None, None, 3), name='data')
    x = _conv_stack(data, [(10, 3, (2, 2, 'same')), (16, 3, None), (32, 3, None)], 'PReLU', 3 * compiled_prelu)
    prob = _Softmax(3, name='prob1')(keras.layers.Conv2D(2, 1, name='conv4-1')(x))
    reg = keras.layers.Conv2D(4, 1, name='conv4-2')(x)
    return keras.Model(data, [reg, prob], name='pnet')


def create_rnet(compiled_prelu=False):
    """R-Net (refinement network) on transposed 24x24 crops: outputs `conv5-2` [N, 4], `prob1` [N, 2].
    compiled_prelu: prelu1, on the largest activations, as an XLA-fused loop (the same values; one
    compilation per batch size); the later ones gain less than a compilation costs."""
    data = keras.Input((24, 24, 3), name='data')
    x = _conv_stack(data, [(28, 3, (3, 2, 'same')), (48, 3, (3, 2, 'valid')), (64, 2, None)], 'prelu',
                    int(compiled_prelu))
    x = _dense_prelu(x, 128, 4)
    prob = _Softmax(1, name='prob1')(keras.layers.Dense(2, name='conv5-1')(x))
    reg = keras.layers.Dense(4, name='conv5-2')(x)
    return keras.Model(data, [reg, prob], name='rnet')


def create_onet(compiled_prelu=False):
    """O-Net (output network) on transposed 48x48 crops: outputs `conv6-2` [N, 4] box regression,
    `conv6-3` [N, 10] landmarks, `prob1` [N, 2]. compiled_prelu: as for create_rnet."""
    data = keras.Input((48, 48, 3), name='data')
    x = _conv_stack(data, [(32, 3, (3, 2, 'same')), (64, 3, (3, 2, 'valid')), (64, 3, (2, 2, 'same')),
                           (128, 2, None)], 'prelu', int(compiled_prelu))
    x = _dense_prelu(x, 256, 5)
    prob = _Softmax(1, name='prob1')(keras.layers.Dense(2, name='conv6-1')(x))
    reg = keras.layers.Dense(4, name='conv6-2')(x)
    landmarks = keras.layers.Dense(10, name='conv6-3')(x)
    return keras.Model(data, [reg, landmarks, prob], name='onet')


# The order of the arrays in the mtcnn package's weight lists, as (original layer, parameter).
_LZ4_ORDER = {
    'pnet': ['conv1', 'PReLU1', 'conv2', 'PReLU2', 'conv3', 'PReLU3', 'conv4-2', 'conv4-1'],
    'rnet': ['conv1', 'prelu1', 'conv2', 'prelu2', 'conv3', 'prelu3', 'conv4', 'prelu4', 'conv5-2', 'conv5-1'],
    'onet': ['conv1', 'prelu1', 'conv2', 'prelu2', 'conv3', 'prelu3', 'conv4', 'prelu4', 'conv5', 'prelu5',
             'conv6-2', 'conv6-3', 'conv6-1'],
}
_NPY_FILES = {'pnet': 'det1.npy', 'rnet': 'det2.npy', 'onet': 'det3.npy'}


def mtcnn_package_weights_dir():
    """The folder of the `mtcnn` pip package's weight files, found without importing the package
    (whose import would build its own TF models)."""
    spec = importlib.util.find_spec('mtcnn')
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError('The MTCNN weights come from the `mtcnn` package (pip install mtcnn), which is not '
                                'installed; or pass the folder of the original det1.npy, det2.npy, det3.npy.')
    return os.path.join(list(spec.submodule_search_locations)[0], 'assets', 'weights')


def _weights_from_lz4(path, net):
    arrays = iter(joblib.load(path))
    weights = {}
    for layer in _LZ4_ORDER[net]:
        if 'prelu' in layer.lower():
            weights[layer] = {'alpha': next(arrays).reshape(-1)}
        else:
            kernel = next(arrays)
            if kernel.ndim == 4:
                # Keras layout of the package: spatial axes swapped relative to the original det*.npy.
                kernel = kernel.transpose(1, 0, 2, 3)
            weights[layer] = {'weights': kernel, 'biases': next(arrays)}
    return weights


def load_weights(model_path=None):
    """The weights of the three networks as {'pnet'|'rnet'|'onet': {layer: {param: array}}}, in the
    original det*.npy layout.

    model_path None: the `mtcnn` package's lz4 files; otherwise a folder with det1.npy, det2.npy,
    det3.npy. Raises FileNotFoundError or ValueError naming the file for a missing or unusable file.
    """
    nets = {}
    for net, npy_name in _NPY_FILES.items():
        if model_path is None:
            path = os.path.join(mtcnn_package_weights_dir(), net + '.lz4')
        else:
            path = os.path.join(os.path.expanduser(model_path), npy_name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'{path}: MTCNN weight file not found')
        try:
            if model_path is None:
                nets[net] = _weights_from_lz4(path, net)
            else:
                nets[net] = np.load(path, encoding='latin1', allow_pickle=True).item()
        except Exception as e:  # pickle, joblib and lz4 raise many kinds of errors for a damaged file
            raise ValueError(f'{path}: not a readable MTCNN weight file ({type(e).__name__}: {e})') from None
    return nets


def _set_weights(model, weights, source):
    for layer in model.layers:
        if not layer.weights:
            continue
        params = weights.get(layer.name)
        if params is None:
            raise ValueError(f'{source}: no weights for layer {layer.name}')
        names = ['alpha'] if isinstance(layer, _PReLU) else ['weights', 'biases']
        try:
            layer.set_weights([np.asarray(params[name], np.float32) for name in names])
        except (KeyError, ValueError) as e:
            raise ValueError(f'{source}: weights of layer {layer.name} do not fit ({e})') from None


def _eager():
    """Eager execution even where original client code builds and calls the networks inside a
    `with tf.Graph().as_default():` block (TF2 has no session to run them in)."""
    return tf.__internal__.eager_context.eager_mode()


def _network_function(model, input_shape, blocks=None):
    """The model as one tf.function with a dynamic batch (and, for P-Net, image size): no retracing.

    It is traced here, once, and run as that concrete function: calling the tf.function from the
    aligner's two threads could trace it twice at the first call, and as TF counts traces by code
    location, the three networks' traces made it warn about "excessive retracing" on every run.

    blocks (block size, multiple): the batch runs in blocks of at most `block size` rows, the last one
    padded with zeros to a multiple of `multiple` (the padding's outputs dropped). Rows are independent,
    so the outputs are the same, and more consistent: on batches of a multiple of 16 rows oneDNN gives a
    row the same values whatever the batch size, while on some other sizes (1, 15, 17, 31, 33 seen) a row
    can differ in the last bit; so a crop scores the same alone or among many.
    """
    graph_fn = tf.function(lambda x: model(x, training=False),
                           input_signature=[tf.TensorSpec([None, *input_shape, 3], tf.float32)])
    with _eager():
        concrete = graph_fn.get_concrete_function()

    def run_all(batch):
        return tuple(output.numpy() for output in concrete(tf.convert_to_tensor(batch, tf.float32)))

    def run_blocks(batch):
        block, multiple = blocks
        batch = np.asarray(batch, np.float32)
        parts = []
        for start in range(0, max(len(batch), 1), block):
            rows = batch[start:start + block]
            padded = max(multiple, -(-len(rows) // multiple) * multiple)
            if padded > len(rows):
                rows = np.concatenate([rows, np.zeros((padded - len(rows), *rows.shape[1:]), np.float32)])
            parts.append([output[:min(block, len(batch) - start)] for output in run_all(rows)])
        return tuple(np.concatenate(outputs) for outputs in zip(*parts))

    def run(batch):
        with _eager():
            return run_blocks(batch) if blocks else run_all(batch)

    run.tracing_count = graph_fn.experimental_get_tracing_count
    return run


def create_mtcnn(sess=None, model_path=None):
    """Builds P-Net, R-Net and O-Net and returns them as callables, as the original did.

    sess: accepted for original client code and ignored (TF2 has no sessions).
    model_path: None for the `mtcnn` package's weights, or a folder with the original det*.npy.
    Each callable takes a float array in the original's layout (transposed images, normalised) and
    returns NumPy arrays: pnet -> (conv4-2, prob1), rnet -> (conv5-2, prob1),
    onet -> (conv6-2, conv6-3, prob1).
    """
    del sess
    weights = load_weights(model_path)
    source = model_path or mtcnn_package_weights_dir()

    def network(net, build, shape, compiled=False):
        model = build(compiled)
        _set_weights(model, weights[net], os.path.join(source, net))
        return _network_function(model, shape, _BLOCKS.get(net))

    with _eager():
        compiled = _xla_works()
        pnet = network('pnet', create_pnet, (None, None))
        if compiled:
            pnet = _compiled_when_recurring(pnet, network('pnet', create_pnet, (None, None), True))
        return pnet, network('rnet', create_rnet, (24, 24), compiled), network('onet', create_onet, (48, 48), compiled)


def _xla_works():
    """Whether this TensorFlow build can run XLA-compiled functions (some builds cannot)."""
    try:
        _compiled_prelu(tf.zeros([1, 1]), tf.zeros([1])).numpy()
        return True
    except Exception:  # pylint: disable=broad-except  # builds without XLA fail in several ways
        return False


# An input shape is run through the compiled P-Net once it has come this many times.
_RECURRING = 3


def _compiled_when_recurring(plain, compiled):
    """P-Net's shapes follow the image sizes, so its XLA-compiled PReLUs would compile for every pyramid
    level of every new image size: this runs a shape through `compiled` only from its _RECURRING-th
    time on (every batch of a dataset of one image size), and through `plain` before (the few sizes of
    a dataset of many). Both give the same values."""
    seen = collections.Counter()

    def run(batch):
        shape = np.shape(batch)  # original client code may pass any array-like
        seen[shape] += 1
        return (compiled if seen[shape] >= _RECURRING else plain)(batch)

    run.tracing_count = lambda: max(plain.tracing_count(), compiled.tracing_count())  # of either graph
    return run


def imresample(img, sz):
    """Resizes to sz = (height, width) with OpenCV's INTER_AREA, as the original."""
    return cv2.resize(img, (sz[1], sz[0]), interpolation=cv2.INTER_AREA)


def generateBoundingBox(imap, reg, scale, t):  # pylint: disable=invalid-name
    """Boxes [n, 9] (x1, y1, x2, y2, score, 4 regressions) of the P-Net cells scoring >= t.

    imap [H', W'] and reg [H', W', 4] are P-Net's outputs transposed back to image orientation.
    """
    stride = 2
    cellsize = 12
    imap = np.transpose(imap)
    dx1, dy1, dx2, dy2 = (np.transpose(reg[:, :, k]) for k in range(4))
    y, x = np.where(imap >= t)
    if y.shape[0] == 1:
        # Kept from the original (a MATLAB-port slip): a lone hit reads its regression from the
        # flipped map. Fixing it would change detections; faithfulness to the reference wins.
        dx1, dy1, dx2, dy2 = (np.flipud(d) for d in (dx1, dy1, dx2, dy2))
    score = imap[(y, x)]
    reg = np.transpose(np.vstack([dx1[(y, x)], dy1[(y, x)], dx2[(y, x)], dy2[(y, x)]]))
    if reg.size == 0:
        reg = np.empty((0, 3))
    bb = np.transpose(np.vstack([y, x]))
    q1 = np.fix((stride * bb + 1) / scale)
    q2 = np.fix((stride * bb + cellsize - 1 + 1) / scale)
    boundingbox = np.hstack([q1, q2, np.expand_dims(score, 1), reg])
    return boundingbox, reg


def nms(boxes, threshold, method):
    """Greedy non-maximum suppression: indices of the kept boxes, best score first.

    method 'Min' measures overlap by the smaller area, anything else by the union. Fixed: the
    original kept the picks in int16 (wrong past 32,767 boxes) and tested `method is 'Min'`.
    """
    if boxes.size == 0:
        return np.empty(0, dtype=np.intp)
    x1 = boxes[:, 0]
    y1 = boxes[:, 1]
    x2 = boxes[:, 2]
    y2 = boxes[:, 3]
    s = boxes[:, 4]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)

    def overlap(i, j):
        xx1 = np.maximum(x1[i], x1[j])
        yy1 = np.maximum(y1[i], y1[j])
        xx2 = np.minimum(x2[i], x2[j])
        yy2 = np.minimum(y2[i], y2[j])
        w = np.maximum(0.0, xx2 - xx1 + 1)
        h = np.maximum(0.0, yy2 - yy1 + 1)
        inter = w * h
        if method == 'Min':
            return inter / np.minimum(area[i], area[j])
        return inter / (area[i] + area[j] - inter)

    n = len(s)
    if n <= _NMS_PAIRWISE_MAX:
        # All pairs at once, elementwise the same arithmetic as one row at a time: same picks, a few
        # NumPy calls per pick instead of twenty.
        everything = np.arange(n)
        keeps = overlap(everything[:, np.newaxis], everything[np.newaxis, :]) <= threshold
    order = np.argsort(s)
    pick = []
    while order.size > 0:
        i = order[-1]
        pick.append(i)
        idx = order[0:-1]
        order = idx[keeps[i, idx] if n <= _NMS_PAIRWISE_MAX else overlap(i, idx) <= threshold]
    return np.array(pick, dtype=np.intp)


def pad(total_boxes, w, h):
    """1-based crop coordinates of each box, clipped to the w x h image, and where they go in a
    box-sized canvas: dy, edy, dx, edx, y, ey, x, ex, tmpw, tmph (as the original)."""
    tmpw = (total_boxes[:, 2] - total_boxes[:, 0] + 1).astype(np.int32)
    tmph = (total_boxes[:, 3] - total_boxes[:, 1] + 1).astype(np.int32)
    x = total_boxes[:, 0].astype(np.int32)
    y = total_boxes[:, 1].astype(np.int32)
    ex = total_boxes[:, 2].astype(np.int32)
    ey = total_boxes[:, 3].astype(np.int32)
    edx = np.where(ex > w, -ex + w + tmpw, tmpw).astype(np.int32)
    edy = np.where(ey > h, -ey + h + tmph, tmph).astype(np.int32)
    ex = np.minimum(ex, w).astype(np.int32)
    ey = np.minimum(ey, h).astype(np.int32)
    dx = np.where(x < 1, 2 - x, 1).astype(np.int32)
    dy = np.where(y < 1, 2 - y, 1).astype(np.int32)
    x = np.maximum(x, 1).astype(np.int32)
    y = np.maximum(y, 1).astype(np.int32)
    return dy, edy, dx, edx, y, ey, x, ex, tmpw, tmph


def rerec(bboxA):  # pylint: disable=invalid-name
    """Turns boxes into squares around the same centre (side = the longer side). Modifies bboxA."""
    h = bboxA[:, 3] - bboxA[:, 1]
    w = bboxA[:, 2] - bboxA[:, 0]
    side = np.maximum(w, h)
    bboxA[:, 0] = bboxA[:, 0] + w * 0.5 - side * 0.5
    bboxA[:, 1] = bboxA[:, 1] + h * 0.5 - side * 0.5
    bboxA[:, 2:4] = bboxA[:, 0:2] + np.transpose(np.tile(side, (2, 1)))
    return bboxA


def bbreg(boundingbox, reg):
    """Calibrates boxes by the regression reg [n, 4] (offsets relative to width/height). Modifies boundingbox."""
    w = boundingbox[:, 2] - boundingbox[:, 0] + 1
    h = boundingbox[:, 3] - boundingbox[:, 1] + 1
    b1 = boundingbox[:, 0] + reg[:, 0] * w
    b2 = boundingbox[:, 1] + reg[:, 1] * h
    b3 = boundingbox[:, 2] + reg[:, 2] * w
    b4 = boundingbox[:, 3] + reg[:, 3] * h
    boundingbox[:, 0:4] = np.transpose(np.vstack([b1, b2, b3, b4]))
    return boundingbox


def _as_rgb(img):
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[:, :, np.newaxis]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4) or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f'expected an image [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got shape {img.shape}')
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[:, :, 0:3])


def _scales(h, w, minsize, factor):
    """The original pyramid: scales from 12/minsize down by `factor` while the short side stays >= 12."""
    m = 12.0 / minsize
    minl = np.amin([h, w]) * m
    scales = []
    factor_count = 0
    while minl >= 12:
        scales.append(m * np.power(factor, factor_count))
        minl = minl * factor
        factor_count += 1
    return scales


def _normalize_transposed(batch):
    """Original input scaling, in float64 like the original, then the width-first layout, as a C-ordered
    float32 array (TensorFlow would copy a strided one once more). uint8 pyramids are scaled in float32:
    (x - 127.5) / 128 is exact in float32 for integers 0-255, so the values are the float64 ones."""
    if batch.dtype == np.uint8:
        scaled = (batch.astype(np.float32) - np.float32(127.5)) * np.float32(0.0078125)
    else:
        scaled = (batch - 127.5) * 0.0078125
    return np.ascontiguousarray(np.transpose(scaled, (0, 2, 1, 3)), dtype=np.float32)


def _stage_one(images, minsizes, pnet, threshold, factor):
    """P-Net over the pyramids of all images; per image the square, integer candidate boxes [n, 5]."""
    by_size = {}  # (hs, ws) -> [(image index, scale index, scale)]: one P-Net call per pyramid size
    for i, (img, minsize) in enumerate(zip(images, minsizes)):
        h, w = img.shape[0:2]
        for s, scale in enumerate(_scales(h, w, minsize, factor)):
            size = (int(np.ceil(h * scale)), int(np.ceil(w * scale)))
            by_size.setdefault(size, []).append((i, s, scale))

    per_scale = [{} for _ in images]
    for size, same_size in by_size.items():
        chunk = max(1, _MAX_PNET_PIXELS // (size[0] * size[1]))
        for start in range(0, len(same_size), chunk):
            members = same_size[start:start + chunk]
            batch = np.stack([imresample(images[i], size) for i, _, _ in members])
            reg, prob = pnet(_normalize_transposed(batch))
            for k, (i, s, scale) in enumerate(members):
                boxes, _ = generateBoundingBox(prob[k, :, :, 1].T, reg[k].transpose(1, 0, 2), scale, threshold)
                pick = nms(boxes.copy(), 0.5, 'Union')
                if boxes.size > 0 and pick.size > 0:
                    per_scale[i][s] = boxes[pick, :]

    candidates = []
    for scale_boxes in per_scale:
        # Scale order, as the original appended them: it decides ties in the NMS sort below.
        total_boxes = np.concatenate([np.empty((0, 9))] + [scale_boxes[s] for s in sorted(scale_boxes)])
        if total_boxes.shape[0] > 0:
            pick = nms(total_boxes.copy(), 0.7, 'Union')
            total_boxes = total_boxes[pick, :]
            regw = total_boxes[:, 2] - total_boxes[:, 0]
            regh = total_boxes[:, 3] - total_boxes[:, 1]
            qq1 = total_boxes[:, 0] + total_boxes[:, 5] * regw
            qq2 = total_boxes[:, 1] + total_boxes[:, 6] * regh
            qq3 = total_boxes[:, 2] + total_boxes[:, 7] * regw
            qq4 = total_boxes[:, 3] + total_boxes[:, 8] * regh
            total_boxes = np.transpose(np.vstack([qq1, qq2, qq3, qq4, total_boxes[:, 4]]))
            total_boxes = rerec(total_boxes.copy())
            total_boxes[:, 0:4] = np.fix(total_boxes[:, 0:4]).astype(np.int32)
        else:
            total_boxes = np.empty((0, 5))
        candidates.append(total_boxes)
    return candidates


def _crops(img, total_boxes, size):
    """The image under each box, zero outside the image, resized to size x size (float64, INTER_AREA on
    float64 as the original's zero-padded canvas was). Returns (crops [n, size, size, 3], kept mask).

    The original's pad() indexes 1-based, so a box (x1, y1, x2, y2) covers pixels x1-1..x2-1, y1-1..y2-1.
    Fixed: a box of size zero (the original's `return np.empty()` TypeError) is dropped; a box wholly
    outside the image (the original's broadcast error) gives a black crop.
    """
    h, w = img.shape[0:2]
    _, _, _, _, _, _, _, _, tmpw, tmph = pad(total_boxes, w, h)
    x1 = total_boxes[:, 0].astype(np.int32) - 1
    y1 = total_boxes[:, 1].astype(np.int32) - 1
    kept = (tmpw > 0) & (tmph > 0)
    crops = np.zeros((int(kept.sum()), size, size, 3))
    for k, n in enumerate(np.flatnonzero(kept)):
        top, left, bottom, right = max(y1[n], 0), max(x1[n], 0), min(y1[n] + tmph[n], h), min(x1[n] + tmpw[n], w)
        if top == y1[n] and left == x1[n] and bottom - top == tmph[n] and right - left == tmpw[n]:
            canvas = img[top:bottom, left:right].astype(np.float64)
        else:
            canvas = np.zeros((tmph[n], tmpw[n], 3))
            if bottom > top and right > left:
                canvas[top - y1[n]:bottom - y1[n], left - x1[n]:right - x1[n]] = img[top:bottom, left:right]
        crops[k] = imresample(canvas, (size, size))
    return crops, kept


def _run_batched(network, inputs):
    """Runs a network (which takes any batch in blocks) over the concatenated inputs; returns its outputs
    transposed to [channels, n] as the original used them."""
    return [np.transpose(output) for output in network(inputs)]


def _network_on_crops(images, candidates, network, size, n_outputs):
    """Crops every image's candidates, runs `network` once over all of them; per image its
    (candidates with dropped degenerate boxes removed, outputs [channels, n] ...)."""
    kept_boxes, crops = [], []
    for img, total_boxes in zip(images, candidates):
        image_crops, kept = _crops(img, total_boxes, size)
        kept_boxes.append(total_boxes[kept])
        crops.append(image_crops)
    counts = [len(c) for c in crops]
    if sum(counts) == 0:
        empty = [np.empty((0, 0), np.float32)] * n_outputs
        return [(boxes, *empty) for boxes in kept_boxes]
    outputs = _run_batched(network, _normalize_transposed(np.concatenate(crops)))
    ends = np.cumsum(counts)
    return [(boxes, *(out[:, end - count:end] for out in outputs))
            for boxes, count, end in zip(kept_boxes, counts, ends)]


def _stage_two(images, candidates, rnet, threshold):
    """R-Net rescoring and calibration; per image the square candidates [n, 5] for O-Net."""
    refined = []
    for total_boxes, out0, out1 in _network_on_crops(images, candidates, rnet, 24, 2):
        if total_boxes.shape[0] == 0:
            refined.append(np.empty((0, 5)))
            continue
        score = out1[1, :]
        ipass = np.where(score > threshold)
        total_boxes = np.hstack([total_boxes[ipass[0], 0:4].copy(), np.expand_dims(score[ipass].copy(), 1)])
        mv = out0[:, ipass[0]]
        if total_boxes.shape[0] > 0:
            pick = nms(total_boxes, 0.7, 'Union')
            total_boxes = total_boxes[pick, :]
            total_boxes = bbreg(total_boxes.copy(), np.transpose(mv[:, pick]))
            total_boxes = rerec(total_boxes.copy())
        # The original truncates the whole array (score too) to int32 here; the score is replaced below.
        refined.append(np.fix(total_boxes).astype(np.int32))
    return refined


def _stage_three(images, candidates, onet, threshold):
    """O-Net scoring, landmarks and calibration; per image (bounding_boxes [n, 5], points [10, n])."""
    results = []
    for total_boxes, out0, out1, out2 in _network_on_crops(images, candidates, onet, 48, 3):
        if total_boxes.shape[0] == 0:
            results.append((np.empty((0, 5)), np.empty((10, 0), np.float32)))
            continue
        score = out2[1, :]
        ipass = np.where(score > threshold)
        points = out1[:, ipass[0]]
        total_boxes = np.hstack([total_boxes[ipass[0], 0:4].copy(), np.expand_dims(score[ipass].copy(), 1)])
        mv = out0[:, ipass[0]]
        w = total_boxes[:, 2] - total_boxes[:, 0] + 1
        h = total_boxes[:, 3] - total_boxes[:, 1] + 1
        points[0:5, :] = np.tile(w, (5, 1)) * points[0:5, :] + np.tile(total_boxes[:, 0], (5, 1)) - 1
        points[5:10, :] = np.tile(h, (5, 1)) * points[5:10, :] + np.tile(total_boxes[:, 1], (5, 1)) - 1
        if total_boxes.shape[0] > 0:
            total_boxes = bbreg(total_boxes.copy(), np.transpose(mv))
            pick = nms(total_boxes.copy(), 0.7, 'Min')
            total_boxes = total_boxes[pick, :]
            points = points[:, pick]
        results.append((total_boxes, points))
    return results


def detect_faces(images, minsize, pnet, rnet, onet, threshold, factor):
    """Detects faces in a list of images at once: per image (bounding_boxes [n, 5], points [10, n]),
    the same numbers `detect_face` gives for that image alone.

    images: RGB uint8 arrays [H, W, 3] (grayscale [H, W] or [H, W, 1] and RGBA are converted), any sizes;
    images of the same size share P-Net calls. minsize: minimum face size in pixels, one number or one
    per image. threshold: the three stages' score thresholds. factor: the pyramid's scale step.
    """
    images = [_as_rgb(img) for img in images]
    minsizes = np.broadcast_to(np.asarray(minsize, dtype=object), (len(images),))
    candidates = _stage_one(images, minsizes, pnet, threshold[0], factor)
    candidates = _stage_two(images, candidates, rnet, threshold[1])
    return _stage_three(images, candidates, onet, threshold[2])


def detect_face(img, minsize, pnet, rnet, onet, threshold, factor):
    """Detects faces in one image: (bounding_boxes [n, 5] as x1, y1, x2, y2, score; points [10, n]).

    img: RGB uint8 [H, W, 3] (grayscale and RGBA are converted). minsize: minimum face size in pixels.
    pnet, rnet, onet: from create_mtcnn. threshold: [th1, th2, th3], the three stages' thresholds.
    factor: the scale step of the image pyramid.
    """
    return detect_faces([img], minsize, pnet, rnet, onet, threshold, factor)[0]


def bulk_detect_face(images, detection_window_size_ratio, pnet, rnet, onet, threshold, factor):
    """Detects faces in a list of images, the minimum face size being detection_window_size_ratio times
    each image's shorter side (at least 12 pixels). Returns per image (bounding_boxes, points), or None
    where no face was found, as the original.
    """
    minsizes = [max(int(detection_window_size_ratio * np.minimum(img.shape[0], img.shape[1])), 12)
                for img in images]
    results = detect_faces(images, minsizes, pnet, rnet, onet, threshold, factor)
    return [result if result[0].shape[0] > 0 else None for result in results]
