"""The one interface every model kind runs behind (Keras networks, frozen graphs, ONNX Runtime,
TFLite): what load_model returns and every script and the service call."""
import tensorflow as tf

from facenet_tf2.errors import ImageSizeError


class EmbeddingModel:
    """Callable images [N, H, W, 3] -> L2-normalised float32 embeddings [N, D] (a tf.Tensor).

    Attributes: `embedding_size` (D), `image_size` (input side, or None when the format does not
    say), `source` (the path it was loaded from), `keras_model` (the Keras network, or None for
    a frozen graph) and `standardization` ('fixed' or 'prewhiten' for a pretrained model name,
    else None: the format does not say).
    """

    def __init__(self, function, embedding_size, image_size, source, keras_model=None, owner=None):
        self._function = function
        self._owner = owner  # what holds the function's variables (they are weakly referenced)
        self.embedding_size = int(embedding_size)
        self.image_size = image_size
        self.source = source
        self.keras_model = keras_model
        self.standardization = None

    def __call__(self, images):
        """Refuses images of another size than the network's (the original's graphs silently
        returned several rows per image for them): ImageSizeError naming the expected size."""
        images = tf.cast(images, tf.float32)
        if self.image_size:
            side = images.shape[1:3]
            if side.is_fully_defined() and tuple(side) != (self.image_size, self.image_size):
                raise ImageSizeError(f'{self.source} takes {self.image_size}x{self.image_size} images, not '
                                     f'{side[0]}x{side[1]}; align or resize the faces to {self.image_size} pixels '
                                     f'(align_dataset_mtcnn.py --image_size {self.image_size})')
            if not side.is_fully_defined():  # traced with a free size: checked when it runs
                tf.debugging.assert_equal(tf.shape(images)[1:3], [self.image_size, self.image_size], message=(
                    f'{self.source} takes {self.image_size}x{self.image_size} images'))
        return self._function(images)

    def __repr__(self):
        return (f'EmbeddingModel({self.source!r}, embedding_size={self.embedding_size}, '
                f'image_size={self.image_size})')
