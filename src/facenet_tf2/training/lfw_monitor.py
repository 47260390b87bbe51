"""LFW (or any pairs file) verification after a training epoch, with the EMA weights."""
import logging
import os
import time

import numpy as np

from facenet_tf2.embeddings import embed_images
from facenet_tf2.errors import TrainingInputError
from facenet_tf2.evaluation import lfw
from facenet_tf2.model_io import keras_embedding_function

log = logging.getLogger(__name__)


def resolve_pairs(config):
    """(image paths, issame) of --lfw_pairs in --lfw_dir, so that a bad pairs file stops the run
    before training; TrainingInputError names the bad line or file."""
    try:
        pairs = lfw.read_pairs(os.path.expanduser(config.lfw_pairs))
        return lfw.get_paths(os.path.expanduser(config.lfw_dir), pairs)
    except (ValueError, FileNotFoundError) as e:
        raise TrainingInputError(f'--lfw_pairs {config.lfw_pairs} with --lfw_dir {config.lfw_dir}: {e}') from None


class LfwMonitor:
    """Evaluates the trainer's EMA network on resolved pairs with an LfwProtocol; writes
    lfw_result.txt lines `step accuracy val_rate` and the lfw/* summaries."""

    def __init__(self, protocol, image_size, log_dir, pairs_and_paths):
        self.protocol, self.image_size, self.log_dir = protocol, image_size, log_dir
        self.paths, self.actual_issame = pairs_and_paths
        self._embed = None

    def __call__(self, trainer, step, summaries):
        """Returns (mean accuracy, validation rate, seconds)."""
        protocol = self.protocol
        start = time.time()
        log.info('Running forward pass on LFW images')
        trainer.swap_averages()
        try:
            if self._embed is None:
                self._embed = keras_embedding_function(trainer.network)
            embedded = embed_images(self._embed, self.paths, self.image_size, protocol.batch_size,
                                    use_flipped_images=protocol.use_flipped_images,
                                    use_fixed_image_standardization=protocol.use_fixed_image_standardization)
        finally:
            trainer.swap_averages()
        _, _, accuracy, val, val_std, far = lfw.evaluate(
            embedded.embeddings.astype(np.float64), self.actual_issame, nrof_folds=protocol.nrof_folds,
            distance_metric=protocol.distance_metric, subtract_mean=protocol.subtract_mean)
        log.info('Accuracy: %2.5f+-%2.5f' % (np.mean(accuracy), np.std(accuracy)))
        log.info('Validation rate: %2.5f+-%2.5f @ FAR=%2.5f' % (val, val_std, far))
        seconds = time.time() - start
        summaries.scalars({'lfw/accuracy': np.mean(accuracy), 'lfw/val_rate': val, 'time/lfw': seconds}, step)
        with open(os.path.join(self.log_dir, 'lfw_result.txt'), 'at') as f:
            f.write('%d\t%.5f\t%.5f\n' % (step, np.mean(accuracy), val))
        return float(np.mean(accuracy)), float(val), seconds
