"""A float32 facenet ONNX model quantised to INT8 with ONNX Runtime's static quantisation.

Method: QDQ format (QuantizeLinear/DequantizeLinear pairs that ONNX Runtime fuses into integer
kernels), weights signed INT8 per output channel, activations unsigned INT8 per tensor with ranges
calibrated by MinMax on real aligned faces: the model runs in float32 on the calibration images
and each activation's scale and zero point are set from the smallest and largest value it takes.
The calibration faces must be aligned like the faces the model will embed (the
align_dataset_mtcnn.py output the user embeds, e.g. 160x160, margin 32) and standardised as the
model expects; they are taken evenly spread over the folder's sorted files, so that many people
and not only the first folder's are seen. DEFAULT_CALIBRATION_IMAGES (64) faces give ranges
that keep LFW accuracy within 0.003 of float32 for the three pretrained models (see README);
fewer than MIN_CALIBRATION_IMAGES are refused, because ranges from a handful of faces clip the
activations of other faces.
"""
import os
import shutil
import tempfile

import numpy as np
from PIL import Image

from facenet_tf2.errors import PathError, UserError
from facenet_tf2.files import write_bytes_atomically
from facenet_tf2.images import is_image_file, read_image

DEFAULT_CALIBRATION_IMAGES = 64
MIN_CALIBRATION_IMAGES = 16
_CALIBRATION_BATCH = 8


def calibration_files(calibration_dir):
    """The image files under `calibration_dir` (recursively), sorted."""
    files = []
    for root, dirs, names in os.walk(calibration_dir):
        dirs.sort()
        files.extend(os.path.join(root, name) for name in sorted(names) if is_image_file(name))
    return files


def check_calibration_dir(calibration_dir, count=DEFAULT_CALIBRATION_IMAGES):
    """The `count` calibration image files of `calibration_dir`, spread evenly over its sorted
    files; a PathError (or UserError for a bad count) when the folder cannot give them."""
    if count < MIN_CALIBRATION_IMAGES:
        raise UserError(f'--calibration_images {count} is too few for INT8 calibration; give at least '
                        f'{MIN_CALIBRATION_IMAGES} (default {DEFAULT_CALIBRATION_IMAGES})')
    if not os.path.isdir(calibration_dir):
        raise PathError(calibration_dir, 'no such calibration folder; give a folder of aligned face images '
                                         '(align_dataset_mtcnn.py output)')
    files = calibration_files(calibration_dir)
    if len(files) < count:
        raise PathError(calibration_dir, f'{len(files) or "no"} image file{"s" if len(files) != 1 else ""} found, '
                                         f'INT8 calibration needs {count}; give a folder with more aligned faces '
                                         f'or a smaller --calibration_images (at least {MIN_CALIBRATION_IMAGES})')
    return [files[i] for i in np.linspace(0, len(files) - 1, count).round().astype(int)]


def calibration_faces(calibration_dir, count=DEFAULT_CALIBRATION_IMAGES, image_size=160,
                      standardization='prewhiten'):
    """float32 [count, image_size, image_size, 3]: the calibration faces, resized (bilinear) where
    they are not image_size square, standardised as the model expects."""
    from facenet_tf2.faces import standardize  # pylint: disable=import-outside-toplevel
    crops = []
    for path in check_calibration_dir(calibration_dir, count):
        image = read_image(path)
        if image.shape[:2] != (image_size, image_size):
            image = np.asarray(Image.fromarray(image).resize((image_size, image_size), Image.BILINEAR))
        crops.append(image)
    return standardize(np.stack(crops), standardization).astype(np.float32)


def write_int8_onnx(float_model, output_file, faces):
    """Quantises `float_model` (an ONNX ModelProto from facenet_tf2.export.onnx) to INT8, calibrated
    on `faces` (float32 [N, H, W, 3], standardised; see calibration_faces), and writes it
    atomically with the float model's metadata (plus facenet.quantization)."""
    from facenet_tf2.extras import require  # pylint: disable=import-outside-toplevel
    require('onnxruntime', 'onnx')
    import onnx  # pylint: disable=import-outside-toplevel
    from onnxruntime import quantization  # pylint: disable=import-outside-toplevel
    from onnxruntime.quantization.shape_inference import quant_pre_process  # pylint: disable=import-outside-toplevel
    from facenet_tf2.export.onnx import INPUT_NAME, metadata, set_metadata  # pylint: disable=import-outside-toplevel

    class Faces(quantization.CalibrationDataReader):
        def __init__(self):
            self._batches = iter([faces[i:i + _CALIBRATION_BATCH] for i in range(0, len(faces), _CALIBRATION_BATCH)])

        def get_next(self):
            batch = next(self._batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    work = tempfile.mkdtemp(prefix='facenet_int8_')
    try:
        float_path, prepared, quantised = (os.path.join(work, name) for name in ('float.onnx', 'prepared.onnx',
                                                                                 'int8.onnx'))
        onnx.save(float_model, float_path)
        # Shape inference and graph clean-up first, as ONNX Runtime recommends before quantising; the shapes
        # are static but for the batch, so ONNX's own inference does (the symbolic one would need sympy).
        quant_pre_process(float_path, prepared, skip_symbolic_shape=True)
        quantization.quantize_static(
            prepared, quantised, Faces(), quant_format=quantization.QuantFormat.QDQ, per_channel=True,
            activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8,
            calibrate_method=quantization.CalibrationMethod.MinMax)
        model = onnx.load(quantised)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    set_metadata(model, **metadata(float_model),
                 quantization=f'int8 static QDQ per-channel, MinMax on {len(faces)} faces')
    write_bytes_atomically(output_file, model.SerializeToString())
    return model
