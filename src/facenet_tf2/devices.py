"""The original scripts' --gpu_memory_fraction on TF2."""
import tensorflow as tf


def set_gpu_memory_fraction(fraction):
    """TF1 reserved `fraction` of each GPU's memory up front (per_process_gpu_memory_fraction).
    TF2 has no such option; below 1.0 the GPUs allocate on demand instead (memory growth), so the
    process takes only what it uses and shares the GPU. Call before the first GPU operation."""
    if fraction >= 1.0:
        return
    for gpu in tf.config.list_physical_devices('GPU'):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # the GPU is already initialised: nothing to change any more
            pass
