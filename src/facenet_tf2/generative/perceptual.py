"""The frozen facenet feature maps of the DFC perceptual loss (`--loss_features`).

The features are end points of a facenet network loaded in any format the port reads (a pretrained
name, a .pb, a checkpoint folder, .keras, .h5), read from its Keras layers. The layers are applied
to an input of any size, so the loss works on 64 px faces as well as on 160 px ones; they run in
inference mode (BatchNorm on the moving averages) and are never trained.
"""
import keras

from facenet_tf2.errors import UserError
from facenet_tf2.model_io import load_keras_network
from facenet_tf2.pretrained import resolve_model

# Original end point names whose Keras layer is named after the variable scope instead.
END_POINT_LAYERS = {'Mixed_5a': 'Repeat', 'Mixed_6b': 'Repeat_1', 'Mixed_8a': 'Repeat_2'}


def parse_feature_names(text):
    """The original's `--loss_features` parsing: comma separated, spaces ignored."""
    return [name for name in text.replace(' ', '').split(',') if name]


def feature_model(network, feature_names):
    """A Keras model [N, H, W, 3] -> [feature map per name] made of `network`'s own (frozen) layers,
    applied in order up to the deepest feature asked for."""
    layers = network.layers[1:]  # after the input
    names = [layer.name for layer in layers]
    wanted = [END_POINT_LAYERS.get(name, name) for name in feature_names]
    unknown = [name for name, layer in zip(feature_names, wanted) if layer not in names]
    if unknown:
        raise UserError(f'--loss_features {",".join(unknown)}: not an end point of {network.name}; use some of '
                        f'{", ".join(names[:8])}')
    last = max(names.index(layer) for layer in wanted)
    inputs = keras.Input((None, None, 3))
    net, outputs = inputs, {}
    for layer in layers[:last + 1]:
        net = layer(net, training=False)
        outputs[layer.name] = net
    model = keras.Model(inputs, [outputs[layer] for layer in wanted], name='perceptual_features')
    model.trainable = False
    return model


def load_feature_model(pretrained_model, feature_names):
    """feature_model of the facenet network `pretrained_model` (a path or a pretrained name)."""
    network, _ = load_keras_network(resolve_model(pretrained_model))
    return feature_model(network, feature_names)
