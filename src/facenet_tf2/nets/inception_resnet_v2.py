"""Inception-ResNet-v2 (Szegedy et al., arXiv:1602.07261) as the original facenet built it, in Keras 3.

Same building blocks as Inception-ResNet-v1 (models.inception_resnet_v1) with wider branches, the
Mixed_5b stem block, 10 x block35, 20 x block17, 9 x block8 plus a last Block8 without ReLU, and
Conv2d_7b_1x1 before the pooling; then dropout and the `Bottleneck` giving the prelogits.
"""
from facenet_tf2.nets.layers import Mixed, avg_pool, branch, embedding_network, inference_from_builder, max_pool
from facenet_tf2.nets.inception_resnet_v1 import block8, block17, block35, conv, reduction_a, reduction_b, repeat, stem

SCOPE = 'InceptionResnetV2'
BLOCK35_FILTERS = (32, (32, 32), (32, 48, 64))
BLOCK17_FILTERS = (192, (128, 160, 192))
BLOCK8_FILTERS = (192, (192, 224, 256))


def mixed_5b(weight_decay=0.0):
    wd = weight_decay
    return Mixed([
        branch('Branch_0', conv(96, 1, 'Conv2d_1x1', weight_decay=wd)),
        branch('Branch_1', conv(48, 1, 'Conv2d_0a_1x1', weight_decay=wd), conv(64, 5, 'Conv2d_0b_5x5', weight_decay=wd)),
        branch('Branch_2', conv(64, 1, 'Conv2d_0a_1x1', weight_decay=wd), conv(96, 3, 'Conv2d_0b_3x3', weight_decay=wd),
               conv(96, 3, 'Conv2d_0c_3x3', weight_decay=wd)),
        branch('Branch_3', avg_pool('AvgPool_0a_3x3'), conv(64, 1, 'Conv2d_0b_1x1', weight_decay=wd)),
    ], name='Mixed_5b')


def inception_resnet_v2(image_size=160, dropout_keep_prob=0.8, bottleneck_layer_size=128, weight_decay=0.0,
                        end_points=False, name=SCOPE):
    """Builds the Keras model mapping images [N, image_size, image_size, 3] to prelogits
    [N, bottleneck_layer_size]; end_points as in inception_resnet_v1."""
    wd = weight_decay
    stages = stem(wd) + [
        ('MaxPool_5a_3x3', max_pool('MaxPool_5a_3x3')),
        ('Mixed_5b', mixed_5b(wd)),
        ('Mixed_5c', repeat(10, block35, 'Repeat', 'block35', scale=0.17, weight_decay=wd, filters=BLOCK35_FILTERS)),
        ('Mixed_6a', reduction_a(256, 256, 384, 384, wd)),
        ('Mixed_6b', repeat(20, block17, 'Repeat_1', 'block17', scale=0.10, weight_decay=wd, filters=BLOCK17_FILTERS)),
        ('Mixed_7a', reduction_b(wd, filters=(384, 288, (288, 320)))),
        ('Mixed_8a', repeat(9, block8, 'Repeat_2', 'block8', scale=0.20, weight_decay=wd, filters=BLOCK8_FILTERS)),
        ('Mixed_8b', block8(activation=False, weight_decay=wd, filters=BLOCK8_FILTERS)),
        ('Conv2d_7b_1x1', conv(1536, 1, 'Conv2d_7b_1x1', weight_decay=wd)),
    ]
    return embedding_network(stages, image_size, dropout_keep_prob, bottleneck_layer_size, wd, end_points, name)


def inference(images, keep_probability, phase_train=True, bottleneck_layer_size=128, weight_decay=0.0, reuse=None):
    """The original entry point; see models.inception_resnet_v1.inference."""
    del reuse
    return inference_from_builder(inception_resnet_v2, images, keep_probability, phase_train, bottleneck_layer_size,
                                  weight_decay)


build_model = inception_resnet_v2
