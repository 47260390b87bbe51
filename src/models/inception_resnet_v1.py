"""Inception-ResNet-v1 (Szegedy et al., arXiv:1602.07261) as the original facenet built it, in Keras 3.

The network of the pretrained 20170512-110547 and 20180402-114759 models: 5 x block35, Mixed_6a,
10 x block17, Mixed_7a, 5 x block8 plus a last Block8 without ReLU, average pool, dropout and the
`Bottleneck` (fully connected, no bias, BatchNorm) giving the prelogits. Layer nesting follows the
original variable scopes (see facenet_tf2.slim_layers), so the pretrained weights load by name.
"""
import keras
from keras import layers

from facenet_tf2.slim_layers import Conv2dBN, DenseBN, InceptionResnetBlock, Mixed, Sequence, branch, max_pool

SCOPE = 'InceptionResnetV1'


def block35(scale=1.0, activation=True, weight_decay=0.0, name='Block35'):
    """Inception-ResNet-A, the 35x35 block."""
    def conv(filters, size, scope):
        return Conv2dBN(filters, size, weight_decay=weight_decay, name=scope)
    return InceptionResnetBlock([
        branch('Branch_0', conv(32, 1, 'Conv2d_1x1')),
        branch('Branch_1', conv(32, 1, 'Conv2d_0a_1x1'), conv(32, 3, 'Conv2d_0b_3x3')),
        branch('Branch_2', conv(32, 1, 'Conv2d_0a_1x1'), conv(32, 3, 'Conv2d_0b_3x3'), conv(32, 3, 'Conv2d_0c_3x3')),
    ], scale=scale, activation=activation, weight_decay=weight_decay, name=name)


def block17(scale=1.0, activation=True, weight_decay=0.0, name='Block17'):
    """Inception-ResNet-B, the 17x17 block."""
    def conv(filters, size, scope):
        return Conv2dBN(filters, size, weight_decay=weight_decay, name=scope)
    return InceptionResnetBlock([
        branch('Branch_0', conv(128, 1, 'Conv2d_1x1')),
        branch('Branch_1', conv(128, 1, 'Conv2d_0a_1x1'), conv(128, (1, 7), 'Conv2d_0b_1x7'),
               conv(128, (7, 1), 'Conv2d_0c_7x1')),
    ], scale=scale, activation=activation, weight_decay=weight_decay, name=name)


def block8(scale=1.0, activation=True, weight_decay=0.0, name='Block8'):
    """Inception-ResNet-C, the 8x8 block."""
    def conv(filters, size, scope):
        return Conv2dBN(filters, size, weight_decay=weight_decay, name=scope)
    return InceptionResnetBlock([
        branch('Branch_0', conv(192, 1, 'Conv2d_1x1')),
        branch('Branch_1', conv(192, 1, 'Conv2d_0a_1x1'), conv(192, (1, 3), 'Conv2d_0b_1x3'),
               conv(192, (3, 1), 'Conv2d_0c_3x1')),
    ], scale=scale, activation=activation, weight_decay=weight_decay, name=name)


def reduction_a(k, l, m, n, weight_decay=0.0, name='Mixed_6a'):
    def conv(filters, size, scope, strides=1, padding='same'):
        return Conv2dBN(filters, size, strides, padding, weight_decay=weight_decay, name=scope)
    return Mixed([
        branch('Branch_0', conv(n, 3, 'Conv2d_1a_3x3', 2, 'valid')),
        branch('Branch_1', conv(k, 1, 'Conv2d_0a_1x1'), conv(l, 3, 'Conv2d_0b_3x3'),
               conv(m, 3, 'Conv2d_1a_3x3', 2, 'valid')),
        branch('Branch_2', max_pool('MaxPool_1a_3x3')),
    ], name=name)


def reduction_b(weight_decay=0.0, name='Mixed_7a'):
    def conv(filters, size, scope, strides=1, padding='same'):
        return Conv2dBN(filters, size, strides, padding, weight_decay=weight_decay, name=scope)
    return Mixed([
        branch('Branch_0', conv(256, 1, 'Conv2d_0a_1x1'), conv(384, 3, 'Conv2d_1a_3x3', 2, 'valid')),
        branch('Branch_1', conv(256, 1, 'Conv2d_0a_1x1'), conv(256, 3, 'Conv2d_1a_3x3', 2, 'valid')),
        branch('Branch_2', conv(256, 1, 'Conv2d_0a_1x1'), conv(256, 3, 'Conv2d_0b_3x3'),
               conv(256, 3, 'Conv2d_1a_3x3', 2, 'valid')),
        branch('Branch_3', max_pool('MaxPool_1a_3x3')),
    ], name=name)


def repeat(count, block_fn, scope, block_name, **kwargs):
    """slim.repeat: `count` blocks named block_name_1 ... inside the scope `Repeat`, `Repeat_1`, ..."""
    return Sequence([block_fn(name=f'{block_name}_{i}', **kwargs) for i in range(1, count + 1)], name=scope)


def inception_resnet_v1(image_size=160, dropout_keep_prob=0.8, bottleneck_layer_size=128, weight_decay=0.0,
                        end_points=False, name=SCOPE):
    """Builds the Keras model mapping images [N, image_size, image_size, 3] to prelogits
    [N, bottleneck_layer_size]. image_size None accepts any size >= 75.

    With end_points=True the model outputs a dict: 'prelogits' and the original's end points
    (Conv2d_1a_3x3 ... Mixed_8b, PrePool, PreLogitsFlatten).
    """
    def conv(filters, size, scope, strides=1, padding='same'):
        return Conv2dBN(filters, size, strides, padding, weight_decay=weight_decay, name=scope)

    inputs = keras.Input((image_size, image_size, 3), name='input')
    points = {}
    net = inputs
    for point, layer in [
            ('Conv2d_1a_3x3', conv(32, 3, 'Conv2d_1a_3x3', 2, 'valid')),
            ('Conv2d_2a_3x3', conv(32, 3, 'Conv2d_2a_3x3', 1, 'valid')),
            ('Conv2d_2b_3x3', conv(64, 3, 'Conv2d_2b_3x3')),
            ('MaxPool_3a_3x3', max_pool('MaxPool_3a_3x3')),
            ('Conv2d_3b_1x1', conv(80, 1, 'Conv2d_3b_1x1', 1, 'valid')),
            ('Conv2d_4a_3x3', conv(192, 3, 'Conv2d_4a_3x3', 1, 'valid')),
            ('Conv2d_4b_3x3', conv(256, 3, 'Conv2d_4b_3x3', 2, 'valid')),
            ('Mixed_5a', repeat(5, block35, 'Repeat', 'block35', scale=0.17, weight_decay=weight_decay)),
            ('Mixed_6a', reduction_a(192, 192, 256, 384, weight_decay)),
            ('Mixed_6b', repeat(10, block17, 'Repeat_1', 'block17', scale=0.10, weight_decay=weight_decay)),
            ('Mixed_7a', reduction_b(weight_decay)),
            ('Mixed_8a', repeat(5, block8, 'Repeat_2', 'block8', scale=0.20, weight_decay=weight_decay)),
            ('Mixed_8b', block8(activation=False, weight_decay=weight_decay)),
    ]:
        net = points[point] = layer(net)
    prelogits = bottleneck_head(net, points, dropout_keep_prob, bottleneck_layer_size, weight_decay)
    return keras.Model(inputs, {'prelogits': prelogits, **points} if end_points else prelogits, name=name)


def bottleneck_head(net, points, dropout_keep_prob, bottleneck_layer_size, weight_decay):
    """The original's `Logits` scope (average pool over the whole map, flatten, dropout) and the
    `Bottleneck` layer."""
    points['PrePool'] = net
    net = layers.GlobalAveragePooling2D(name='AvgPool_1a_8x8')(net)
    net = points['PreLogitsFlatten'] = layers.Dropout(1.0 - dropout_keep_prob, name='Dropout')(net)
    return DenseBN(bottleneck_layer_size, weight_decay=weight_decay, name='Bottleneck')(net)


def inference(images, keep_probability, phase_train=True, bottleneck_layer_size=128, weight_decay=0.0, reuse=None):
    """The original entry point: builds the network on `images` and returns (prelogits, end_points).

    `images` is a keras.Input (symbolic: wrap the result in keras.Model to train it) or a float
    batch [N, H, W, 3]. `phase_train` is Keras' `training` flag (a Python bool). TF2 has no
    variable collections, so end_points['model'] is the Keras model that holds the variables;
    `reuse` is accepted for the original call shape (call that model again to reuse them).
    """
    del reuse
    return run_inference(inception_resnet_v1, images, keep_probability, phase_train, bottleneck_layer_size,
                         weight_decay)


def run_inference(builder, images, keep_probability, phase_train, bottleneck_layer_size, weight_decay):
    """Shared body of the models' `inference` functions."""
    model = builder(image_size=images.shape[1], dropout_keep_prob=keep_probability,
                    bottleneck_layer_size=bottleneck_layer_size, weight_decay=weight_decay, end_points=True)
    outputs = dict(model(images, training=phase_train))
    prelogits = outputs.pop('prelogits')
    outputs['model'] = keras.Model(model.input, model.output['prelogits'], name=model.name)
    return prelogits, outputs


build_model = inception_resnet_v1
