"""What a restart needs to continue a run exactly, as a TF2 checkpoint in `training_state/`."""
import tensorflow as tf


class RunState:
    """tf.train.Checkpoint of the trainer's variables, optimizer, EMA and step, the last finished
    epoch and `input_position` (how far the trainer's input has gone, in the unit its epoch plan
    counts: stream images, P x K batches or sampling rounds), kept by a CheckpointManager (its files
    are complete before the `checkpoint` index names them)."""

    def __init__(self, trainer, directory):
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name='epoch')
        self.input_position = tf.Variable(0, dtype=tf.int64, trainable=False, name='position')
        self.checkpoint = tf.train.Checkpoint(network=trainer.network, optimizer=trainer.optimizer,
                                              ema=trainer.ema, global_step=trainer.global_step,
                                              epoch=self.epoch, position=self.input_position,
                                              **{f'module_{name}': module for name, module in trainer.modules.items()})
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=2)

    def restore(self):
        """Restores the newest state; returns False when there is none."""
        if self.manager.latest_checkpoint is None:
            return False
        self.checkpoint.restore(self.manager.latest_checkpoint).expect_partial()
        return True

    def save(self, epoch, input_position, step):
        self.epoch.assign(epoch)
        self.input_position.assign(input_position)
        return self.manager.save(checkpoint_number=int(step))
