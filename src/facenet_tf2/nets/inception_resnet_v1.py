"""Inception-ResNet-v1 (Szegedy et al., arXiv:1602.07261) as the original facenet built it, in Keras 3.

The network of the pretrained 20170512-110547 and 20180402-114759 models: 5 x block35, Mixed_6a,
10 x block17, Mixed_7a, 5 x block8 plus a last Block8 without ReLU, average pool, dropout and the
`Bottleneck` (fully connected, no bias, BatchNorm) giving the prelogits. Layer nesting follows the
original variable scopes (see facenet_tf2.nets.layers), so the pretrained weights load by name.
"""
from facenet_tf2.nets.layers import (Conv2dBN, InceptionResnetBlock, Mixed, Sequence, branch, embedding_network,
                                     inference_from_builder, max_pool)

SCOPE = 'InceptionResnetV1'


def conv(filters, kernel_size, name, strides=1, padding='same', weight_decay=0.0):
    return Conv2dBN(filters, kernel_size, strides, padding, weight_decay=weight_decay, name=name)


def block35(scale=1.0, activation=True, weight_decay=0.0, name='Block35', filters=(32, (32, 32), (32, 32, 32))):
    """Inception-ResNet-A, the 35x35 block. `filters` per branch (Inception-ResNet-v2 widens them)."""
    b0, (b1a, b1b), (b2a, b2b, b2c) = filters
    return InceptionResnetBlock([
        branch('Branch_0', conv(b0, 1, 'Conv2d_1x1', weight_decay=weight_decay)),
        branch('Branch_1', conv(b1a, 1, 'Conv2d_0a_1x1', weight_decay=weight_decay),
               conv(b1b, 3, 'Conv2d_0b_3x3', weight_decay=weight_decay)),
        branch('Branch_2', conv(b2a, 1, 'Conv2d_0a_1x1', weight_decay=weight_decay),
               conv(b2b, 3, 'Conv2d_0b_3x3', weight_decay=weight_decay),
               conv(b2c, 3, 'Conv2d_0c_3x3', weight_decay=weight_decay)),
    ], scale=scale, activation=activation, weight_decay=weight_decay, name=name)


def block17(scale=1.0, activation=True, weight_decay=0.0, name='Block17', filters=(128, (128, 128, 128))):
    """Inception-ResNet-B, the 17x17 block."""
    return _two_branch_block(filters, (1, 7), (7, 1), ('Conv2d_0b_1x7', 'Conv2d_0c_7x1'), scale, activation,
                             weight_decay, name)


def block8(scale=1.0, activation=True, weight_decay=0.0, name='Block8', filters=(192, (192, 192, 192))):
    """Inception-ResNet-C, the 8x8 block."""
    return _two_branch_block(filters, (1, 3), (3, 1), ('Conv2d_0b_1x3', 'Conv2d_0c_3x1'), scale, activation,
                             weight_decay, name)


def _two_branch_block(filters, size_b, size_c, names, scale, activation, weight_decay, name):
    """block17 and block8: a 1x1 branch and a 1x1 -> 1xk -> kx1 branch."""
    b0, (b1a, b1b, b1c) = filters
    return InceptionResnetBlock([
        branch('Branch_0', conv(b0, 1, 'Conv2d_1x1', weight_decay=weight_decay)),
        branch('Branch_1', conv(b1a, 1, 'Conv2d_0a_1x1', weight_decay=weight_decay),
               conv(b1b, size_b, names[0], weight_decay=weight_decay),
               conv(b1c, size_c, names[1], weight_decay=weight_decay)),
    ], scale=scale, activation=activation, weight_decay=weight_decay, name=name)


def reduction_a(k, l, m, n, weight_decay=0.0, name='Mixed_6a'):
    return Mixed([
        branch('Branch_0', conv(n, 3, 'Conv2d_1a_3x3', 2, 'valid', weight_decay)),
        branch('Branch_1', conv(k, 1, 'Conv2d_0a_1x1', weight_decay=weight_decay),
               conv(l, 3, 'Conv2d_0b_3x3', weight_decay=weight_decay),
               conv(m, 3, 'Conv2d_1a_3x3', 2, 'valid', weight_decay)),
        branch('Branch_2', max_pool('MaxPool_1a_3x3')),
    ], name=name)


def reduction_b(weight_decay=0.0, name='Mixed_7a', filters=(384, 256, (256, 256))):
    """Reduction-B; `filters` are the outputs of branch 0, branch 1 and branch 2's last two convolutions."""
    b0, b1, (b2b, b2c) = filters
    return Mixed([
        branch('Branch_0', conv(256, 1, 'Conv2d_0a_1x1', weight_decay=weight_decay),
               conv(b0, 3, 'Conv2d_1a_3x3', 2, 'valid', weight_decay)),
        branch('Branch_1', conv(256, 1, 'Conv2d_0a_1x1', weight_decay=weight_decay),
               conv(b1, 3, 'Conv2d_1a_3x3', 2, 'valid', weight_decay)),
        branch('Branch_2', conv(256, 1, 'Conv2d_0a_1x1', weight_decay=weight_decay),
               conv(b2b, 3, 'Conv2d_0b_3x3', weight_decay=weight_decay),
               conv(b2c, 3, 'Conv2d_1a_3x3', 2, 'valid', weight_decay)),
        branch('Branch_3', max_pool('MaxPool_1a_3x3')),
    ], name=name)


def repeat(count, block_fn, scope, block_name, **kwargs):
    """slim.repeat: `count` blocks named block_name_1 ... inside the scope `Repeat`, `Repeat_1`, ..."""
    return Sequence([block_fn(name=f'{block_name}_{i}', **kwargs) for i in range(1, count + 1)], name=scope)


def stem(weight_decay=0.0):
    """(end point, layer) of the stem both Inception-ResNets share, up to Conv2d_4a_3x3 (71x71x192)."""
    return [
        ('Conv2d_1a_3x3', conv(32, 3, 'Conv2d_1a_3x3', 2, 'valid', weight_decay)),
        ('Conv2d_2a_3x3', conv(32, 3, 'Conv2d_2a_3x3', 1, 'valid', weight_decay)),
        ('Conv2d_2b_3x3', conv(64, 3, 'Conv2d_2b_3x3', weight_decay=weight_decay)),
        ('MaxPool_3a_3x3', max_pool('MaxPool_3a_3x3')),
        ('Conv2d_3b_1x1', conv(80, 1, 'Conv2d_3b_1x1', 1, 'valid', weight_decay)),
        ('Conv2d_4a_3x3', conv(192, 3, 'Conv2d_4a_3x3', 1, 'valid', weight_decay)),
    ]


def inception_resnet_v1(image_size=160, dropout_keep_prob=0.8, bottleneck_layer_size=128, weight_decay=0.0,
                        end_points=False, name=SCOPE):
    """Builds the Keras model mapping images [N, image_size, image_size, 3] to prelogits
    [N, bottleneck_layer_size]. image_size None accepts any size >= 75.

    With end_points=True the model outputs a dict: 'prelogits' and the original's end points
    (Conv2d_1a_3x3 ... Mixed_8b, PrePool, PreLogitsFlatten).
    """
    wd = weight_decay
    stages = stem(wd) + [
        ('Conv2d_4b_3x3', conv(256, 3, 'Conv2d_4b_3x3', 2, 'valid', wd)),
        ('Mixed_5a', repeat(5, block35, 'Repeat', 'block35', scale=0.17, weight_decay=wd)),
        ('Mixed_6a', reduction_a(192, 192, 256, 384, wd)),
        ('Mixed_6b', repeat(10, block17, 'Repeat_1', 'block17', scale=0.10, weight_decay=wd)),
        ('Mixed_7a', reduction_b(wd)),
        ('Mixed_8a', repeat(5, block8, 'Repeat_2', 'block8', scale=0.20, weight_decay=wd)),
        ('Mixed_8b', block8(activation=False, weight_decay=wd)),
    ]
    return embedding_network(stages, image_size, dropout_keep_prob, bottleneck_layer_size, wd, end_points, name)


def inference(images, keep_probability, phase_train=True, bottleneck_layer_size=128, weight_decay=0.0, reuse=None):
    """(prelogits, end_points) of the network built on `images`: the original's entry point.

    `images` is a keras.Input (symbolic: wrap the result in keras.Model to train it) or a float
    batch [N, H, W, 3]. `phase_train` is Keras' `training` flag (a Python bool). TF2 has no
    variable collections, so end_points['model'] is the Keras model that holds the variables;
    `reuse` is accepted for the original call shape (call that model again to reuse them).
    """
    del reuse
    return inference_from_builder(inception_resnet_v1, images, keep_probability, phase_train, bottleneck_layer_size,
                                  weight_decay)


build_model = inception_resnet_v1
