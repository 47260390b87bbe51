"""Exporting a facenet network: TensorFlow formats (frozen GraphDef, SavedModel, TFLite, .keras),
float32 ONNX and INT8 ONNX.

The TensorFlow writers live in facenet_tf2.export.tensorflow and are re-exported here, so
`from facenet_tf2.export import write_frozen_graph` keeps working. The ONNX writers need the
`onnx` extra (`pip install -e '.[onnx]'`); their modules import it only when called.
"""
from facenet_tf2.export.tensorflow import (EmbeddingModule, frozen_graph_def, save_embedding_saved_model,
                                           save_keras, write_frozen_graph, write_tflite)
from facenet_tf2.export.onnx import onnx_model_proto, write_onnx
from facenet_tf2.export.int8 import (DEFAULT_CALIBRATION_IMAGES, MIN_CALIBRATION_IMAGES, calibration_faces,
                                     check_calibration_dir, write_int8_onnx)

__all__ = ['EmbeddingModule', 'frozen_graph_def', 'save_embedding_saved_model', 'save_keras', 'write_frozen_graph',
           'write_tflite', 'onnx_model_proto', 'write_onnx', 'DEFAULT_CALIBRATION_IMAGES', 'MIN_CALIBRATION_IMAGES',
           'calibration_faces', 'check_calibration_dir', 'write_int8_onnx']
