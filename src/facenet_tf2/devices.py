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


# CPU feature flags (/proc/cpuinfo `flags` on x86, `Features` on Arm) with bfloat16 arithmetic.
BFLOAT16_CPU_FLAGS = ('avx512_bf16', 'amx_bf16', 'bf16')


def cpu_flags(cpuinfo='/proc/cpuinfo'):
    """The CPU's feature flags, or None where the system does not list them."""
    try:
        with open(cpuinfo, encoding='utf-8', errors='replace') as file:
            for line in file:
                key, _, value = line.partition(':')
                if key.strip() in ('flags', 'Features'):
                    return set(value.split())
    except OSError:
        return None
    return None


def native_bfloat16(cpuinfo='/proc/cpuinfo'):
    """Whether bfloat16 compute runs on hardware made for it: a GPU, or a CPU with one of
    BFLOAT16_CPU_FLAGS. Unknown flags count as yes (nothing to go on)."""
    if tf.config.list_physical_devices('GPU'):
        return True
    flags = cpu_flags(cpuinfo)
    return flags is None or any(flag in flags for flag in BFLOAT16_CPU_FLAGS)
