"""The original's test network: the `Bottleneck` layer (fully connected, no bias, BatchNorm) applied
directly to the flattened 160x160x3 images. Its variables have no scope (`Bottleneck/weights`)."""
import keras
from keras import layers

from facenet_tf2.nets.layers import DenseBN, inference_from_builder

SCOPE = ''
NAME = 'dummy'


def dummy(image_size=160, dropout_keep_prob=0.8, bottleneck_layer_size=128, weight_decay=0.0, end_points=False,
          name=NAME):
    """Builds the Keras model images [N, image_size, image_size, 3] -> prelogits; dropout_keep_prob
    is accepted for the common builder arguments (the original network has no dropout)."""
    del dropout_keep_prob
    image_size = image_size or 160
    inputs = keras.Input((image_size, image_size, 3), name='input')
    flat = layers.Reshape((image_size * image_size * 3,), name='Reshape')(inputs)
    prelogits = DenseBN(bottleneck_layer_size, weight_decay=weight_decay, name='Bottleneck')(flat)
    return keras.Model(inputs, {'prelogits': prelogits} if end_points else prelogits, name=name)


def inference(images, keep_probability, phase_train=True, bottleneck_layer_size=128, weight_decay=0.0, reuse=None):
    """The original entry point; see models.inception_resnet_v1.inference."""
    del reuse
    return inference_from_builder(dummy, images, keep_probability, phase_train, bottleneck_layer_size, weight_decay)


build_model = dummy
