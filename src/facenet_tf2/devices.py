"""How TensorFlow uses this machine: CPU threads, and the original scripts' --gpu_memory_fraction."""
import tensorflow as tf


def configure_tensorflow(threads=None, gpu_memory_fraction=1.0):
    """Call before the first TensorFlow operation.

    threads: intra- and inter-op threads for this process (None leaves TensorFlow's default),
    e.g. a share of the cores for each of several worker processes.
    gpu_memory_fraction: TF1 reserved this fraction of each GPU's memory up front
    (per_process_gpu_memory_fraction). TF2 has no such option; below 1.0 the GPUs allocate on
    demand instead (memory growth), so the process takes only what it uses and shares the GPU.
    """
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    if gpu_memory_fraction < 1.0:
        for gpu in tf.config.list_physical_devices('GPU'):
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # the GPU is already initialised: nothing to change any more
                pass
