"""The learning rate of a step, as the original computed it."""
import os

from facenet_tf2.runfiles import LEARNING_RATE_STOP, get_learning_rate_from_file


def learning_rate_for(config, epoch, global_step):
    """--learning_rate, or the schedule file's rate for `epoch` when it is not positive, then
    tf.train.exponential_decay(rate, global_step, decay_epochs * epoch_size, decay_factor,
    staircase=True). LEARNING_RATE_STOP (for any rate <= 0) means training ends."""
    rate = config.learning_rate if config.learning_rate > 0 else \
        get_learning_rate_from_file(os.path.expanduser(config.learning_rate_schedule_file), epoch)
    if rate <= 0:
        return LEARNING_RATE_STOP
    decay_steps = config.learning_rate_decay_epochs * config.epoch_size
    return rate * config.learning_rate_decay_factor ** (global_step // decay_steps)
