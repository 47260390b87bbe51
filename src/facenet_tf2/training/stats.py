"""The original's `stat.h5`, declared by each trainer: which statistics it keeps, how often and in
what shape, and how the per-step ones print on the console."""
import os
from dataclasses import dataclass

import h5py
import numpy as np

from facenet_tf2.files import atomic_path

STEP, EPOCH, VALIDATION = 'step', 'epoch', 'validation'


@dataclass(frozen=True)
class Stat:
    """One statistic: `key` in stat.h5 and in a step's results; kept `per` step (one row per global
    step), epoch or validation pass, each row of `shape`; printed after each step as `label`
    `format` when it has a label (a per-epoch statistic prints the step's value, e.g. the rate)."""
    key: str
    per: str = STEP
    label: str | None = None
    format: str = '%2.3f'
    shape: tuple = ()


LEARNING_RATE = Stat('learning_rate', EPOCH, 'Lr', '%2.5f')
# Kept by the core for every trainer.
CORE_STATS = (LEARNING_RATE, Stat('time_train', EPOCH), Stat('time_evaluate', EPOCH), Stat('lfw_accuracy', EPOCH),
              Stat('lfw_valrate', EPOCH))


def with_core_stats(stats):
    """A trainer's declarations (in console order, LEARNING_RATE where its column goes) plus the
    core's that it does not list."""
    keys = {stat.key for stat in stats}
    return tuple(stats) + tuple(stat for stat in CORE_STATS if stat.key not in keys)


class Stats:
    """The arrays of stat.h5, rewritten after every epoch; a resumed run starts from the file."""

    def __init__(self, filename, stats, rows):
        """rows: {STEP: steps, EPOCH: epochs, VALIDATION: validation passes} the run can have."""
        self.filename = filename
        self.arrays = {stat.key: np.zeros((rows[stat.per], *stat.shape), np.float32) for stat in stats}
        if os.path.exists(filename):
            with h5py.File(filename, 'r') as f:
                for key, array in self.arrays.items():
                    if key in f and f[key].shape == array.shape:
                        array[...] = f[key][...]

    def __getitem__(self, key):
        return self.arrays[key]

    def __contains__(self, key):
        return key in self.arrays

    def save(self):
        with atomic_path(self.filename) as temporary, h5py.File(temporary, 'w') as f:
            for key, value in self.arrays.items():
                f.create_dataset(key, data=value)
