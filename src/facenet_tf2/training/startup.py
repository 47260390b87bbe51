"""Starting a training run the same way for both trainers: devices, precision, strategy, run
folders, network, optimizer, EMA, then resume or pretrained weights, and the input stream."""
import os
from dataclasses import dataclass

import keras
import tensorflow as tf

from facenet_tf2.devices import configure_tensorflow
from facenet_tf2.model_io import load_keras_network
from facenet_tf2.training.core import Trainer, import_network, make_strategy
from facenet_tf2.training.data import training_batches
from facenet_tf2.errors import TrainingInputError
from facenet_tf2.training.run import LfwEvaluation, RunFolders, TrainingRun, learning_rate_for
from facenet_tf2.weights import check_weights_fit, checkpoint_weights, model_weights

PRECISION_POLICIES = {'float32': 'float32', 'bfloat16': 'mixed_bfloat16', 'float16': 'mixed_float16'}


@dataclass
class TrainingSession:
    args: object
    run: TrainingRun
    trainer: Trainer
    first_epoch: int
    position: int

    def batches(self, image_paths, labels, control, unreadable, batch_size=None):
        """An iterator of distributed batches (images, labels, stream positions) from where the
        run stands; batch_size defaults to --batch_size (the global batch)."""
        dataset = training_batches(image_paths, labels, control, self.args.image_size,
                                   batch_size or self.args.batch_size, self.args.seed, start=self.position,
                                   unreadable=unreadable)
        return iter(self.trainer.strategy.experimental_distribute_dataset(dataset))

    def learning_rate_stops(self, epoch):
        return learning_rate_for(self.args, epoch, int(self.trainer.global_step.numpy())) <= 0

    def epochs(self):
        """The epochs still to run, from first_epoch to --max_nrof_epochs, ending early where the
        learning-rate schedule stops."""
        for epoch in range(self.first_epoch, self.args.max_nrof_epochs + 1):
            if self.learning_rate_stops(epoch):
                print(f'The learning rate schedule ends before epoch {epoch}: training stops')
                return
            yield epoch


def pretrained_weights(path):
    """{original name: array} of --pretrained_model: a checkpoint prefix (model-x.ckpt-N, as the
    original took), or anything facenet.load_model reads that carries weights."""
    path = os.path.expanduser(path)
    if os.path.exists(path + '.index'):
        return checkpoint_weights(path)
    network, _ = load_keras_network(path)
    return model_weights(network)


def start_training(args, script_path, modules, stat_shapes, lfw_batch_size=100):
    """Everything before the first step, in the order that refuses bad input before slow work."""
    configure_tensorflow(gpu_memory_fraction=args.gpu_memory_fraction)
    lfw_pairs = None
    if args.lfw_dir:
        try:
            lfw_pairs = LfwEvaluation.resolve(args)
        except (ValueError, FileNotFoundError) as e:
            raise TrainingInputError(f'--lfw_pairs {args.lfw_pairs} with --lfw_dir {args.lfw_dir}: {e}') from None
    if args.precision == 'float16' and not tf.config.list_physical_devices('GPU'):
        raise TrainingInputError('--precision float16 needs a GPU; on a CPU use --precision bfloat16')
    strategy = make_strategy(args.distribution)
    replicas = strategy.num_replicas_in_sync
    if args.batch_size % replicas:
        raise TrainingInputError(f'--batch_size {args.batch_size} does not divide among {replicas} replicas; use a '
                                 f'multiple of {replicas}')
    network = import_network(args.model_def)
    folders = RunFolders(args, script_path)
    print(f'Model directory: {folders.model_dir}')
    print(f'Log directory: {folders.log_dir}')
    keras.utils.set_random_seed(args.seed)  # the original's tf.set_random_seed: the same start for the same seed
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[args.precision])
    try:
        trainer = Trainer(strategy,
                          lambda: network.build_model(image_size=args.image_size,
                                                      dropout_keep_prob=args.keep_probability,
                                                      bottleneck_layer_size=args.embedding_size,
                                                      weight_decay=args.weight_decay),
                          modules, optimizer=args.optimizer, moving_average_decay=args.moving_average_decay,
                          sync_batch_norm=args.sync_batch_norm, loss_scale=args.precision == 'float16',
                          seed=args.seed)
    finally:
        keras.mixed_precision.set_global_policy('float32')
    trainer.build(args.embedding_size)
    lfw = LfwEvaluation(args, folders.log_dir, lfw_batch_size, lfw_pairs) if lfw_pairs else None
    run = TrainingRun(args, trainer, folders, stat_shapes, lfw)

    def load_pretrained():
        if args.pretrained_model:
            print(f'Restoring pretrained model: {args.pretrained_model}')
            weights = pretrained_weights(args.pretrained_model)
            check_weights_fit(weights, network, args.embedding_size, args.pretrained_model)
            trainer.load_network_weights(weights, args.pretrained_model)

    first_epoch, position = run.start(load_pretrained)
    return TrainingSession(args, run, trainer, first_epoch, position)
