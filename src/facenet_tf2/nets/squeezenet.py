"""SqueezeNet (Iandola et al., arXiv:1602.07360) as the original facenet built it, in Keras 3:
fire modules with BatchNorm, conv10 to 1000 channels, average pool, then the `Bottleneck`
(fully connected, no bias, BatchNorm) giving the prelogits."""
import keras
from keras import layers

from facenet_tf2.nets.layers import (Conv2dBN, DenseBN, Mixed, SeededDropout, Sequence, conv2d_bias, inference_from_builder,
                                     max_pool)

SCOPE = 'squeezenet'


def fire_module(squeeze_depth, expand_depth, weight_decay=0.0, name='fire'):
    return Sequence([
        Conv2dBN(squeeze_depth, 1, weight_decay=weight_decay, name='squeeze'),
        Mixed([Conv2dBN(expand_depth, 1, weight_decay=weight_decay, name='1x1'),
               Conv2dBN(expand_depth, 3, weight_decay=weight_decay, name='3x3')], name='expand'),
    ], name=name)


def squeezenet(image_size=160, dropout_keep_prob=0.8, bottleneck_layer_size=128, weight_decay=0.0, end_points=False,
               name=SCOPE):
    """Builds the Keras model mapping images [N, image_size, image_size, 3] to prelogits
    [N, bottleneck_layer_size]. slim's pooling default padding is VALID, its convolutions' SAME.
    With end_points the model outputs a dict: 'prelogits' and each layer's output by name."""
    wd = weight_decay
    stages = [
        Conv2dBN(96, 7, strides=2, weight_decay=wd, name='conv1'),
        max_pool('maxpool1'),
        fire_module(16, 64, wd, 'fire2'),
        fire_module(16, 64, wd, 'fire3'),
        fire_module(32, 128, wd, 'fire4'),
        max_pool('maxpool4', pool_size=2),
        fire_module(32, 128, wd, 'fire5'),
        fire_module(48, 192, wd, 'fire6'),
        fire_module(48, 192, wd, 'fire7'),
        fire_module(64, 256, wd, 'fire8'),
        max_pool('maxpool8'),
        fire_module(64, 256, wd, 'fire9'),
        SeededDropout(1.0 - dropout_keep_prob, name='Dropout'),
        conv2d_bias(1000, 1, wd, name='conv10'),
        layers.GlobalAveragePooling2D(name='avgpool10'),
    ]
    inputs = keras.Input((image_size, image_size, 3), name='input')
    points = {}
    net = inputs
    for layer in stages:
        net = points[layer.name] = layer(net)
    prelogits = DenseBN(bottleneck_layer_size, weight_decay=wd, name='Bottleneck')(net)
    return keras.Model(inputs, {'prelogits': prelogits, **points} if end_points else prelogits, name=name)


def inference(images, keep_probability, phase_train=True, bottleneck_layer_size=128, weight_decay=0.0, reuse=None):
    """The original entry point; see models.inception_resnet_v1.inference."""
    del reuse
    return inference_from_builder(squeezenet, images, keep_probability, phase_train, bottleneck_layer_size,
                                  weight_decay)


build_model = squeezenet
