"""The one epoch loop both trainers run.

A trainer describes its epochs with an `EpochPlan`: the statistics it keeps (stats.Stat), the steps
of an epoch (`steps(epoch)` yields a `Step` per train step: the step function, the input iterator,
the global batch size and the batch number shown on the console), and hooks for what is its own
(a step's extra summaries, the per-epoch figures, validation). `train` does the rest for every
trainer: runs each step through Run.step, records its statistics in stat.h5 and prints the
original's console line, sums the training time, writes the time/* summaries, reports unreadable
images and ends the epoch (Run.end_epoch), then finishes the run.
"""
import logging
from dataclasses import dataclass
from typing import Callable, Iterator

from facenet_tf2.training.stats import EPOCH, STEP

log = logging.getLogger(__name__)


@dataclass
class Step:
    function: Callable
    batches: Iterator
    global_batch_size: int
    batch_number: int


class EpochPlan:
    """What a trainer adds to the loop. Subclasses set `unreadable` (pipeline.UnreadableImages),
    implement `steps(epoch)` and keep `input_position` (what RunState saves: the unit is theirs) up
    to date. Their statistics are declared when the Run is made (startup.start_run)."""
    unreadable = None
    input_position = 0

    def steps(self, epoch) -> Iterator[Step]:
        raise NotImplementedError

    def derived(self, results):
        """{key: value} of statistics computed from a step's results (NumPy values)."""
        return {}

    def after_step(self, run, results, batch_number):
        """Called after each step with its results, the derived ones included."""

    def epoch_figures(self, epoch):
        """{stat key: value} of this epoch beyond time_train (e.g. time_select), also summarised as
        time/<key without 'time_'>."""
        return {}

    def validation(self, run, epoch):
        """A callable that validates at the end of `epoch`, or None when none is due."""
        return None

    def finish(self):
        """Called once after the last epoch, before the run exports its network."""


def step_line(epoch, batch_number, epoch_size, results, stats):
    """The original's console line of a step: epoch, batch, time, then each labelled statistic."""
    columns = ''.join(f'\t{stat.label} {stat.format % results[stat.key]}' for stat in stats if stat.label)
    return 'Epoch: [%d][%d/%d]\tTime %.3f' % (epoch, batch_number + 1, epoch_size, results['duration']) + columns


def train(run, plan):
    """Runs the epochs still to run with `plan`, then finishes the run; returns the model folder."""
    stats = run.declared_stats
    printed = [stat for stat in stats if stat.label]
    for epoch in run.epochs():
        train_seconds = 0.0
        for step in plan.steps(epoch):
            results = run.step(step.function, step.batches, step.global_batch_size, epoch)
            results.update(plan.derived(results))
            global_step = run.global_step
            for stat in stats:
                if stat.per == STEP:
                    run.stats[stat.key][global_step - 1] = results[stat.key]
                elif stat.per == EPOCH and stat.key in results:
                    if stat.shape:  # an epoch's histogram: the steps' counts add up
                        run.stats[stat.key][epoch - 1] += results[stat.key]
                    else:
                        run.stats[stat.key][epoch - 1] = results[stat.key]
            plan.after_step(run, results, step.batch_number)
            train_seconds += results['duration']
            log.info(step_line(epoch, step.batch_number, run.config.epoch_size, results, printed))
        figures = {'time_train': train_seconds, **plan.epoch_figures(epoch)}
        for key, value in figures.items():
            run.stats[key][epoch - 1] = value
        summaries = {'time/total': train_seconds, 'time/input_wait': run.input_wait_seconds}
        summaries.update({f'time/{key[len("time_"):]}': value for key, value in figures.items()
                          if key.startswith('time_') and key != 'time_train'})
        run.summaries.scalars(summaries, run.global_step)
        if plan.unreadable:
            log.info(f'{len(plan.unreadable)} unreadable image(s) skipped so far, e.g. {plan.unreadable.failures[0][0]}')
        run.end_epoch(epoch, plan.input_position, plan.validation(run, epoch))
    plan.finish()
    run.finish()
    return run.folders.model_dir

