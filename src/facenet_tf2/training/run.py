"""One training run's life outside the train step: its folders, resume, learning rate, statistics,
TensorBoard summaries, LFW evaluation, checkpoints and the final export.

The layout is the original's: `models_base_dir/<YYYYmmdd-HHMMSS>/` holds the name-based
checkpoints `model-<subdir>.ckpt-<step>` and `model-<subdir>.meta` (checkpoints.py), and
`logs_base_dir/<subdir>/` the event files, `arguments.txt`, `revision_info.txt`, `stat.h5` and
`lfw_result.txt`. Beside the original's files the model folder holds `training_state/` (every
variable, optimizer slot, EMA shadow, the step, epoch and input position) and `run.json` (the
arguments). A run started again with the same arguments finds the newest unfinished run folder
with those arguments and continues it from its last state; at the end the EMA embedding network
is exported as `<subdir>.pb` (frozen, for TF1-style clients and validate_on_lfw.py) and
`<subdir>.keras`.
"""
import json
import os
import sys
import time
from datetime import datetime

import h5py
import numpy as np
import tensorflow as tf

import lfw
from facenet_tf2.errors import NonFiniteLoss
from facenet_tf2.embeddings import embed_images
from facenet_tf2.export import save_keras, write_frozen_graph
from facenet_tf2.files import atomic_path
from facenet_tf2.model_io import keras_embedding_function
from facenet_tf2.runfiles import (LEARNING_RATE_STOP, get_learning_rate_from_file, store_revision_info,
                                  write_arguments_to_file)
from facenet_tf2.training.checkpoints import save_name_based_checkpoint, write_metagraph

# Arguments that do not change what a run computes: a restart may differ in them.
_NOT_PART_OF_THE_RUN = {'no_resume', 'gpu_memory_fraction', 'nrof_preprocess_threads'}
_FINISHED = 'finished'


class RunFolders:
    """The log and model folders of a run, new or resumed."""

    def __init__(self, args, script_path):
        self.arguments = {k: v for k, v in sorted(vars(args).items()) if k not in _NOT_PART_OF_THE_RUN}
        models_base_dir = os.path.expanduser(args.models_base_dir)
        previous = None if args.no_resume else find_resumable_run(models_base_dir, self.arguments)
        self.resumed = previous is not None
        self.subdir = previous or datetime.strftime(datetime.now(), '%Y%m%d-%H%M%S')
        self.log_dir = os.path.join(os.path.expanduser(args.logs_base_dir), self.subdir)
        self.model_dir = os.path.join(models_base_dir, self.subdir)
        self.state_dir = os.path.join(self.model_dir, 'training_state')
        os.makedirs(self.log_dir, exist_ok=True)
        os.makedirs(self.model_dir, exist_ok=True)
        if not self.resumed:
            with atomic_path(os.path.join(self.model_dir, 'run.json')) as temporary, open(temporary, 'w') as f:
                json.dump({'arguments': self.arguments}, f, indent=1, default=str)
        write_arguments_to_file(args, os.path.join(self.log_dir, 'arguments.txt'))
        store_revision_info(os.path.dirname(os.path.realpath(script_path)), self.log_dir, ' '.join(sys.argv))

    def mark_finished(self):
        with open(os.path.join(self.model_dir, _FINISHED), 'w') as f:
            f.write(datetime.now().isoformat() + '\n')


def find_resumable_run(models_base_dir, arguments):
    """The newest run folder under models_base_dir that ran with `arguments`, has a training
    state and did not finish; None if there is none."""
    if not os.path.isdir(models_base_dir):
        return None
    for subdir in sorted(os.listdir(models_base_dir), reverse=True):
        folder = os.path.join(models_base_dir, subdir)
        if os.path.exists(os.path.join(folder, _FINISHED)) or \
                tf.train.latest_checkpoint(os.path.join(folder, 'training_state')) is None:
            continue
        try:
            with open(os.path.join(folder, 'run.json')) as f:
                recorded = json.load(f)['arguments']
        except (OSError, ValueError, KeyError):
            continue
        if recorded == json.loads(json.dumps(arguments, default=str)):
            return subdir
    return None


def learning_rate_for(args, epoch, global_step):
    """The original's learning rate: --learning_rate, or the schedule file's rate for `epoch` when
    it is not positive, then tf.train.exponential_decay(rate, global_step, decay_epochs *
    epoch_size, decay_factor, staircase=True). LEARNING_RATE_STOP (or any rate <= 0) ends training."""
    rate = args.learning_rate if args.learning_rate > 0 else \
        get_learning_rate_from_file(os.path.expanduser(args.learning_rate_schedule_file), epoch)
    if rate <= 0:
        return LEARNING_RATE_STOP
    decay_steps = args.learning_rate_decay_epochs * args.epoch_size
    return rate * args.learning_rate_decay_factor ** (global_step // decay_steps)


class Stats:
    """The original's `stat.h5`: per-step and per-epoch arrays, rewritten after every epoch."""

    def __init__(self, filename, shapes):
        self.filename = filename
        self.arrays = {key: np.zeros(shape, np.float32) for key, shape in shapes.items()}
        if os.path.exists(filename):  # a resumed run keeps what the earlier part recorded
            with h5py.File(filename, 'r') as f:
                for key, array in self.arrays.items():
                    if key in f and f[key].shape == array.shape:
                        array[...] = f[key][...]

    def save(self):
        with atomic_path(self.filename) as temporary, h5py.File(temporary, 'w') as f:
            for key, value in self.arrays.items():
                f.create_dataset(key, data=value)


class Summaries:
    """TensorBoard scalars and histograms in the run's log folder."""

    def __init__(self, log_dir):
        self.writer = tf.summary.create_file_writer(log_dir)

    def scalars(self, values, step):
        with self.writer.as_default(step=int(step)):
            for tag, value in values.items():
                tf.summary.scalar(tag, float(value))

    def histogram_counts(self, tag, counts, value_range, step):
        """A histogram already counted into equal bins over value_range."""
        from tensorboard.plugins.histogram import metadata  # pylint: disable=import-outside-toplevel
        edges = np.linspace(value_range[0], value_range[1], len(counts) + 1)
        buckets = np.stack([edges[:-1], edges[1:], np.asarray(counts, np.float64)], axis=1)
        with self.writer.as_default(step=int(step)):
            tf.summary.write(tag, tf.constant(buckets), metadata=metadata.create_summary_metadata(tag, ''))

    def variable_histograms(self, named_variables, step):
        """--log_histograms: a histogram of every weight tensor, under its original name."""
        with self.writer.as_default(step=int(step)):
            for name, variable in named_variables.items():
                tf.summary.histogram(name, tf.convert_to_tensor(variable))

    def flush(self):
        self.writer.flush()


class LfwEvaluation:
    """LFW (or any pairs file) verification during training, with the EMA weights: the pairs and
    their images are resolved when the run starts, so a bad pairs file stops it before training."""

    def __init__(self, args, log_dir, batch_size, pairs_and_paths):
        self.args, self.log_dir, self.batch_size = args, log_dir, batch_size
        self.paths, self.actual_issame = pairs_and_paths
        self._embed = None

    @staticmethod
    def resolve(args):
        """(image paths, issame) of --lfw_pairs in --lfw_dir; raises naming a bad line or file."""
        pairs = lfw.read_pairs(os.path.expanduser(args.lfw_pairs))
        return lfw.get_paths(os.path.expanduser(args.lfw_dir), pairs)

    def __call__(self, trainer, step, summaries):
        args = self.args
        start = time.time()
        print('Running forward pass on LFW images')
        trainer.swap_averages()
        try:
            if self._embed is None:
                self._embed = keras_embedding_function(trainer.network)
            embedded = embed_images(self._embed, self.paths, args.image_size, self.batch_size,
                                    use_flipped_images=getattr(args, 'lfw_use_flipped_images', False),
                                    use_fixed_image_standardization=getattr(args, 'use_fixed_image_standardization',
                                                                            False))
        finally:
            trainer.swap_averages()
        _, _, accuracy, val, val_std, far = lfw.evaluate(
            embedded.embeddings.astype(np.float64), self.actual_issame, nrof_folds=args.lfw_nrof_folds,
            distance_metric=getattr(args, 'lfw_distance_metric', 0), subtract_mean=getattr(args, 'lfw_subtract_mean',
                                                                                            False))
        print('Accuracy: %2.5f+-%2.5f' % (np.mean(accuracy), np.std(accuracy)))
        print('Validation rate: %2.5f+-%2.5f @ FAR=%2.5f' % (val, val_std, far))
        seconds = time.time() - start
        summaries.scalars({'lfw/accuracy': np.mean(accuracy), 'lfw/val_rate': val, 'time/lfw': seconds}, step)
        with open(os.path.join(self.log_dir, 'lfw_result.txt'), 'at') as f:
            f.write('%d\t%.5f\t%.5f\n' % (step, np.mean(accuracy), val))
        return float(np.mean(accuracy)), float(val), seconds


class TrainingState:
    """Everything needed to continue a run exactly: tf.train.Checkpoint of the trainer's
    variables, optimizer, EMA, step, epoch and input position, kept by a CheckpointManager (its
    files are complete before the `checkpoint` index names them)."""

    def __init__(self, trainer, directory):
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name='epoch')
        self.position = tf.Variable(0, dtype=tf.int64, trainable=False, name='position')
        self.checkpoint = tf.train.Checkpoint(network=trainer.network, optimizer=trainer.optimizer,
                                              ema=trainer.ema, global_step=trainer.global_step,
                                              epoch=self.epoch, position=self.position,
                                              **{f'module_{name}': module for name, module in trainer.modules.items()})
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=2)

    def restore(self):
        """Restores the newest state; returns False when there is none."""
        if self.manager.latest_checkpoint is None:
            return False
        self.checkpoint.restore(self.manager.latest_checkpoint).expect_partial()
        return True

    def save(self, step):
        return self.manager.save(checkpoint_number=int(step))


def save_checkpoint(trainer, folders, image_size):
    """The original's per-epoch save: the name-based checkpoint of what its Saver held (the
    trainable variables, BatchNorm moving statistics and the Logits layer included; not the
    centres), and the metagraph once."""
    step = int(trainer.global_step.numpy())
    start = time.time()
    weights = {name: variable.numpy() for name, variable in trainer.named_variables().items() if name != 'centers'}
    save_name_based_checkpoint(weights, folders.model_dir, folders.subdir, step)
    metagraph = os.path.join(folders.model_dir, f'model-{folders.subdir}.meta')
    if not os.path.exists(metagraph):
        write_metagraph(weights, metagraph, image_size, trainer.network)
    print(f'Variables saved in {time.time() - start:.2f} seconds')


def export_embedding_network(trainer, folders, image_size):
    """The EMA embedding network as `<subdir>.pb` (frozen: input:0, phase_train:0, embeddings:0)
    and `<subdir>.keras` in the model folder."""
    trainer.swap_averages()
    try:
        frozen = os.path.join(folders.model_dir, f'{folders.subdir}.pb')
        write_frozen_graph(trainer.network, frozen, image_size)
        save_keras(trainer.network, os.path.join(folders.model_dir, f'{folders.subdir}.keras'))
    finally:
        trainer.swap_averages()
    print(f'Exported the moving-average embedding network to {frozen}')
    return frozen


class TrainingRun:
    """Ties a Trainer to its run folders: restore or pretrained start, one step at a time with the
    statistics, summaries and NaN check, and the end of each epoch (checkpoint, training state,
    LFW, stat.h5) and of the run (export). The scripts drive their own epoch loops with it."""

    def __init__(self, args, trainer, folders, stat_shapes, lfw_evaluation=None):
        self.args, self.trainer, self.folders = args, trainer, folders
        self.state = TrainingState(trainer, folders.state_dir)
        self.stats = Stats(os.path.join(folders.log_dir, 'stat.h5'), stat_shapes)
        self.summaries = Summaries(folders.log_dir)
        self.lfw = lfw_evaluation
        self.input_wait_seconds = 0.0

    def start(self, load_pretrained):
        """Continues a resumed run from its state, or calls load_pretrained() for a new one.
        Returns (first epoch, stream position)."""
        if self.folders.resumed and self.state.restore():
            epoch, position = int(self.state.epoch.numpy()), int(self.state.position.numpy())
            print(f'Resuming run {self.folders.subdir} after epoch {epoch} (step {int(self.trainer.global_step.numpy())})')
            return epoch + 1, position
        load_pretrained()
        return 1, 0

    def step(self, step_fn, batches, global_batch_size, epoch):
        """Runs one train step on the next batch of the iterator `batches`; returns its metrics as
        NumPy values, with 'duration' and 'input_wait' in seconds and 'learning_rate'."""
        global_step = int(self.trainer.global_step.numpy())
        rate = learning_rate_for(self.args, epoch, global_step)
        self.trainer.set_learning_rate(rate)
        start = time.perf_counter()
        inputs = next(batches)
        waited = time.perf_counter() - start
        self.input_wait_seconds += waited
        results = {key: np.asarray(value) for key, value in step_fn(inputs, global_batch_size).items()}
        results.update(learning_rate=rate, duration=time.perf_counter() - start, input_wait=waited)
        if not np.isfinite(results['loss']):
            raise NonFiniteLoss(f'the loss became {results["loss"]} at step {global_step + 1} (epoch {epoch}); the last '
                                f'good checkpoint is kept in {self.folders.model_dir}; lower --learning_rate and '
                                'start again (or resume from it with --pretrained_model)')
        scalars = {key: value for key, value in results.items() if np.ndim(value) == 0 and key not in
                   ('duration', 'input_wait') and not key.endswith('max')}
        self.summaries.scalars(scalars, global_step + 1)
        return results

    def end_epoch(self, epoch, position, validate=None):
        """The original's end of epoch: validation (a callable, if due), checkpoint, LFW, stat.h5;
        then the training state that a restart continues from."""
        stats = self.stats.arrays
        start = time.time()
        if validate is not None:
            validate()
        if 'time_validate' in stats:
            stats['time_validate'][epoch - 1] = time.time() - start
        save_checkpoint(self.trainer, self.folders, self.args.image_size)
        step = int(self.trainer.global_step.numpy())
        if getattr(self.args, 'log_histograms', False):
            self.summaries.variable_histograms(self.trainer.named_variables(), step)
        start = time.time()
        if self.lfw is not None:
            accuracy, val, _ = self.lfw(self.trainer, step, self.summaries)
            stats['lfw_accuracy'][epoch - 1], stats['lfw_valrate'][epoch - 1] = accuracy, val
        if 'time_evaluate' in stats:
            stats['time_evaluate'][epoch - 1] = time.time() - start
        print('Saving statistics')
        self.stats.save()
        self.state.epoch.assign(epoch)
        self.state.position.assign(position)
        self.state.save(step)
        self.summaries.flush()

    def finish(self):
        frozen = export_embedding_network(self.trainer, self.folders, self.args.image_size)
        self.folders.mark_finished()
        self.summaries.flush()
        return frozen
