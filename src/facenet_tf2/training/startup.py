"""Starting a training run the same way for both trainers: devices, precision, strategy, run
folders, network, optimizer, EMA, then resume or pretrained weights."""
import functools
import logging
import os

import keras
import tensorflow as tf

from facenet_tf2.devices import BFLOAT16_CPU_FLAGS, configure_tensorflow, native_bfloat16
from facenet_tf2.errors import TrainingInputError
from facenet_tf2.model_io import load_keras_network
from facenet_tf2.training.core import Trainer, import_network, make_strategy
from facenet_tf2.training.folders import RunFolders
from facenet_tf2.training.lfw_monitor import LfwMonitor, resolve_pairs
from facenet_tf2.training.run import Run
from facenet_tf2.training.stats import with_core_stats
from facenet_tf2.weights import check_weights_fit, checkpoint_weights, model_weights

log = logging.getLogger(__name__)

PRECISION_POLICIES = {'float32': 'float32', 'bfloat16': 'mixed_bfloat16', 'float16': 'mixed_float16'}


def pretrained_weights(path):
    """{original name: array} of --pretrained_model: a checkpoint prefix (model-x.ckpt-N, as the
    original took), or anything facenet.load_model reads that carries weights."""
    path = os.path.expanduser(path)
    if os.path.exists(path + '.index'):
        return checkpoint_weights(path)
    network, _ = load_keras_network(path)
    return model_weights(network)


def _build_network(network, config):
    """The --model_def network for the run's sizes; a size it cannot take (an --image_size too small
    for its strided layers) is the user's error, in one line."""
    try:
        return network.build_model(image_size=config.image_size, dropout_keep_prob=config.keep_probability,
                                   bottleneck_layer_size=config.embedding_size, weight_decay=config.weight_decay)
    except ValueError as error:
        raise TrainingInputError(f'--model_def {config.model_def} cannot be built for --image_size {config.image_size}: '
                                 f'{str(error).splitlines()[0]} Use a larger --image_size (160 for the pretrained '
                                 'models).') from None


def start_run(config, script_path, modules, stats, rows):
    """Everything before the first step, in the order that refuses bad input before slow work;
    returns the started Run. config: a validated TrainingConfig; modules: {name: builder} the
    trainer trains beside the network; stats: the trainer's Stat declarations; rows: their
    capacity by kind (stats.STEP, EPOCH, VALIDATION)."""
    configure_tensorflow(gpu_memory_fraction=config.gpu_memory_fraction)
    lfw_pairs = resolve_pairs(config) if config.lfw_dir else None
    if config.precision == 'float16' and not tf.config.list_physical_devices('GPU'):
        raise TrainingInputError('--precision float16 needs a GPU; on a CPU use --precision bfloat16')
    strategy = make_strategy(config.distribution)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise TrainingInputError(f'--batch_size {config.batch_size} does not divide among {replicas} replicas; use a '
                                 f'multiple of {replicas}')
    network = import_network(config.model_def)
    keras.utils.set_random_seed(config.seed)  # the original's tf.set_random_seed: the same start for the same seed
    precision = config.precision
    if precision == 'bfloat16' and not native_bfloat16():
        log.warning('--precision bfloat16: this CPU has no bfloat16 instructions (%s), so bfloat16 would train '
                    'slower than float32; training in float32', ', '.join(BFLOAT16_CPU_FLAGS))
        precision = 'float32'
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[precision])
    try:
        trainer = Trainer(strategy, functools.partial(_build_network, network, config), modules,
                          optimizer=config.optimizer, moving_average_decay=config.moving_average_decay,
                          sync_batch_norm=config.sync_batch_norm, loss_scale=precision == 'float16',
                          seed=config.seed, jit_compile=config.jit_compile)
    finally:
        keras.mixed_precision.set_global_policy('float32')
    trainer.build(config.embedding_size)
    # After the network is built: a --model_def / --image_size it cannot build leaves no run folder.
    folders = RunFolders(config, script_path)
    log.info(f'Model directory: {folders.model_dir}')
    log.info(f'Log directory: {folders.log_dir}')
    lfw = LfwMonitor(config.lfw_protocol(), config.image_size, folders.log_dir, lfw_pairs) if lfw_pairs else None
    run = Run(config, trainer, folders, with_core_stats(stats), rows, lfw)

    def load_pretrained():
        if config.pretrained_model:
            log.info(f'Restoring pretrained model: {config.pretrained_model}')
            weights = pretrained_weights(config.pretrained_model)
            check_weights_fit(weights, network, config.embedding_size, config.pretrained_model)
            trainer.load_network_weights(weights, config.pretrained_model)

    run.start(load_pretrained)
    return run
