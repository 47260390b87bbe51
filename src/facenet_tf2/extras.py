"""Optional runtimes (the onnx and tflite extras): imported only where used, with a one-line
error naming the extra that brings a missing one."""
import importlib

from facenet_tf2.errors import RuntimeMissing

# module -> (extra, package)
EXTRAS = {'onnxruntime': ('onnx', 'onnxruntime'), 'onnx': ('onnx', 'onnx'), 'tf2onnx': ('onnx', 'tf2onnx'),
          'ai_edge_litert': ('tflite', 'ai-edge-litert')}


def available(module):
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def require(module, extra=None):
    """Imports optional `module`, or raises RuntimeMissing naming the extra that brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra, package = EXTRAS.get(module, (extra, module))
        raise RuntimeMissing(f'{package} is not installed; install the {extra} extra: '
                             f"pip install -e '.[{extra}]' (or pip install {package})") from None
