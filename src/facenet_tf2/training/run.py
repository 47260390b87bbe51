"""A training run: a Trainer tied to its folders, statistics, summaries, LFW monitor and state.

`Run` continues a resumed run from its state or starts a new one from the pretrained weights; runs
one step at a time (learning rate, input wait, NaN check, summaries); ends each epoch as the
original did (validation if due, checkpoint, LFW, stat.h5) and then saves the state a restart
continues from; and at the end exports the EMA embedding network. The epoch loop that drives it is
loop.train.
"""
import logging
import os
import time

import numpy as np

from facenet_tf2.errors import NonFiniteLoss
from facenet_tf2.training.checkpoints import export_embedding_network, save_epoch_checkpoint
from facenet_tf2.training.data import training_batches
from facenet_tf2.training.schedule import learning_rate_for
from facenet_tf2.training.state import RunState
from facenet_tf2.training.stats import Stats
from facenet_tf2.training.summaries import Summaries

log = logging.getLogger(__name__)


class Run:  # pylint: disable=too-many-instance-attributes
    """config: the trainer's TrainingConfig; folders: RunFolders; stats: every Stat the run keeps
    (stats.with_core_stats); rows: {stats.STEP, EPOCH, VALIDATION: how many rows each kind has};
    lfw: an LfwMonitor or None."""

    def __init__(self, config, trainer, folders, stats, rows, lfw=None):
        self.config, self.trainer, self.folders, self.lfw = config, trainer, folders, lfw
        self.declared_stats = tuple(stats)
        self.state = RunState(trainer, folders.state_dir)
        self.stats = Stats(os.path.join(folders.log_dir, 'stat.h5'), stats, rows)
        self.summaries = Summaries(folders.log_dir)
        self.input_wait_seconds = 0.0
        self.first_epoch, self.input_position = 1, 0

    @property
    def global_step(self):
        return int(self.trainer.global_step.numpy())

    def start(self, load_pretrained):
        """Continues a resumed run from its state, or calls load_pretrained() for a new one; sets
        first_epoch and input_position."""
        if self.folders.resumed and self.state.restore():
            epoch = int(self.state.epoch.numpy())
            self.first_epoch, self.input_position = epoch + 1, int(self.state.input_position.numpy())
            log.info(f'Resuming run {self.folders.subdir} after epoch {epoch} (step {self.global_step})')
        else:
            load_pretrained()

    def epochs(self):
        """The epochs still to run, first_epoch to --max_nrof_epochs, ending early where the
        learning-rate schedule stops."""
        for epoch in range(self.first_epoch, self.config.max_nrof_epochs + 1):
            if learning_rate_for(self.config, epoch, self.global_step) <= 0:
                log.info(f'The learning rate schedule ends before epoch {epoch}: training stops')
                return
            yield epoch

    def batches(self, image_paths, labels, control, unreadable):
        """An iterator of distributed batches (images, labels, stream positions) of the seeded
        training stream, from input_position on (data.training_batches), --batch_size each."""
        dataset = training_batches(image_paths, labels, control, self.config.image_size, self.config.batch_size,
                                   self.config.seed, start=self.input_position, unreadable=unreadable)
        return iter(self.trainer.distribute(dataset))

    def step(self, step_fn, batches, global_batch_size, epoch):
        """Runs one train step on the next batch of the iterator `batches`; returns its metrics as
        NumPy values, with 'duration' and 'input_wait' in seconds and 'learning_rate'."""
        global_step = self.global_step
        rate = learning_rate_for(self.config, epoch, global_step)
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

    def end_epoch(self, epoch, input_position, validate=None):
        """The original's end of epoch: validation (a callable, if due), checkpoint, LFW, stat.h5;
        then the state that a restart continues from."""
        stats = self.stats
        start = time.time()
        if validate is not None:
            validate()
        if 'time_validate' in stats:
            stats['time_validate'][epoch - 1] = time.time() - start
        save_epoch_checkpoint(self.trainer, self.folders.model_dir, self.folders.subdir, self.config.image_size)
        step = self.global_step
        if self.config.logs_weight_histograms():
            self.summaries.variable_histograms(self.trainer.named_variables(), step)
        start = time.time()
        if self.lfw is not None:
            accuracy, val, _ = self.lfw(self.trainer, step, self.summaries)
            stats['lfw_accuracy'][epoch - 1], stats['lfw_valrate'][epoch - 1] = accuracy, val
        stats['time_evaluate'][epoch - 1] = time.time() - start
        log.info('Saving statistics')
        stats.save()
        self.state.save(epoch, input_position, step)
        self.summaries.flush()

    def finish(self):
        frozen = export_embedding_network(self.trainer, self.folders.model_dir, self.folders.subdir,
                                          self.config.image_size)
        self.folders.mark_finished()
        self.summaries.flush()
        return frozen

