"""The commands start TensorFlow without its C++ start-up chatter (oneDNN and CUDA notices, a
`failed call to cuInit` error line on machines without a GPU): a user sees only what matters.

TensorFlow's native logging writes some lines before any log level applies, so `import
tensorflow` runs with the process's standard error (file descriptor 2) pointed at /dev/null, and
TF_CPP_MIN_LOG_LEVEL defaults to 3 for what comes later. A Python error during the import still
shows (it is raised after standard error is restored). Nothing is hidden when the user set
TF_CPP_MIN_LOG_LEVEL or FACENET_TF2_DEBUG.
"""
import os
import sys



def start_tensorflow_quietly():
    """Imports TensorFlow and Keras quietly unless the user asked for TensorFlow's messages."""
    if 'tensorflow' in sys.modules or 'TF_CPP_MIN_LOG_LEVEL' in os.environ or \
            os.environ.get('FACENET_TF2_DEBUG', '').lower() not in ('', '0', 'false', 'no'):
        return
    os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real standard error (e.g. an embedded interpreter)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401 pylint: disable=import-outside-toplevel,unused-import
        import tensorflow  # noqa: F401 pylint: disable=import-outside-toplevel,unused-import
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
