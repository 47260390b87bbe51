"""TensorBoard scalars and histograms in a run's log folder."""
import numpy as np
import tensorflow as tf


class Summaries:
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
