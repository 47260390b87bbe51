"""The original's VAE definitions (`generative.models.dfc_vae`, `dfc_vae_large`, `dfc_vae_resnet`) as
Keras models whose variables carry the original names.

Every Keras variable path, less the model's own name, is the original variable name with slim's leaf
names (`encoder/Conv2d_1/weights`, `encoder/Conv2d_1/BatchNorm/moving_mean`, `decoder/Fc_1/biases`),
so an original checkpoint (its Saver held the trainable variables, BatchNorm's moving averages among
them) loads by name (`original_weights`, `assign_original_weights`).

As in the original: slim.conv2d with BatchNorm (decay 0.995, epsilon 0.001, beta but no gamma) and
no bias, weights from a normal truncated at two standard deviations (stddev 0.1), SAME padding; the
fully connected layers have biases and no BatchNorm; the activation is leaky ReLU max(0.1 x, x); the
decoder upsamples by nearest neighbour. The decoder's last convolution keeps its BatchNorm (slim's
arg_scope gave it one) and has no activation.
"""
import keras
from keras import layers, ops

from facenet_tf2.nets.layers import Conv2dBN, original_name

ARCHITECTURES = ('dfc_vae', 'dfc_vae_large', 'dfc_vae_resnet')


def leaky_relu(x):
    return ops.maximum(0.1 * x, x)


def _initializer():
    return keras.initializers.TruncatedNormal(stddev=0.1)


@keras.saving.register_keras_serializable(package='facenet_generative')
class LeakyConv2dBN(Conv2dBN):
    """slim.conv2d with BatchNorm and leaky ReLU, as the VAEs used it."""
    activation_after_batch_norm = staticmethod(leaky_relu)


@keras.saving.register_keras_serializable(package='facenet_generative')
class LinearConv2dBN(Conv2dBN):
    """slim.conv2d with BatchNorm and activation_fn=None (the decoders' output layer)."""
    activation_after_batch_norm = None


def _conv(filters, kernel_size, strides, name, activation=True):
    kind = LeakyConv2dBN if activation else LinearConv2dBN
    return kind(filters, kernel_size, strides, kernel_initializer=_initializer(), name=name)


def _dense(units, name):
    return layers.Dense(units, kernel_initializer=_initializer(), name=name)


class ResidualRepeat(layers.Layer):
    """slim.repeat(net, 3, conv2d_block, 0.1, ...): three `net + 0.1 * conv(net)` in one scope, the
    convolutions named `<scope>/<scope>_1` ... `<scope>_3`."""

    def __init__(self, filters, kernel_size, count=3, scale=0.1, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.convs = [_conv(filters, kernel_size, 1, f'{self.name}_{i + 1}') for i in range(count)]

    def build(self, input_shape):
        for conv in self.convs:
            conv.build(input_shape)

    def call(self, inputs, training=None):
        net = inputs
        for conv in self.convs:
            net = net + conv(net, training=training) * self.scale
        return net


class _Stack(layers.Layer):
    """Layers in order under one variable scope (`encoder` or `decoder`)."""

    def __init__(self, parts, **kwargs):
        super().__init__(**kwargs)
        self.parts = parts

    def run(self, net, training):
        for part in self.parts:
            net = part(net, training=training) if isinstance(part, (Conv2dBN, ResidualRepeat)) else part(net)
        return net


class Encoder(_Stack):
    """Convolutions down to 4x4, flattened, then the two fully connected heads: (mean, log variance)."""

    def __init__(self, parts, latent_variable_dim, **kwargs):
        super().__init__(parts, **kwargs)
        self.flatten = layers.Flatten(name='Flatten')
        self.fc_mean = _dense(latent_variable_dim, 'Fc_1')
        self.fc_log_variance = _dense(latent_variable_dim, 'Fc_2')

    def call(self, images, training=None):
        net = self.flatten(self.run(images, training))
        return self.fc_mean(net), self.fc_log_variance(net)


class Decoder(_Stack):
    """Fully connected to 4x4x256, then nearest-neighbour upsampling and convolutions to the image."""

    def __init__(self, parts, **kwargs):
        super().__init__(parts, **kwargs)
        self.fc = _dense(4096, 'Fc_1')
        self.reshape = layers.Reshape((4, 4, 256), name='Reshape')

    def call(self, latent_var, training=None):
        return self.run(self.reshape(self.fc(latent_var)), training)


def _upsample(index):
    return layers.UpSampling2D(2, interpolation='nearest', name=f'Upsample_{index}')


def _layers(architecture):
    """(image size, encoder parts, decoder parts) of one of the original's three VAEs."""
    if architecture == 'dfc_vae':
        encoder = [_conv(f, 4, 2, f'Conv2d_{i + 1}') for i, f in enumerate((32, 64, 128, 256))]
        decoder = []
        for i, f in enumerate((128, 64, 32, 3)):
            decoder += [_upsample(i + 1), _conv(f, 3, 1, f'Conv2d_{i + 1}', activation=i < 3)]
        return 64, encoder, decoder
    if architecture == 'dfc_vae_large':
        encoder = [_conv(f, 4, 2, f'Conv2d_{i + 1}') for i, f in enumerate((32, 64, 128, 256, 512))]
        decoder = []
        for i, f in enumerate((128, 64, 32, 3, 3)):
            decoder += [_upsample(i + 1), _conv(f, 3, 1, f'Conv2d_{i + 1}', activation=i < 4)]
        return 128, encoder, decoder
    if architecture == 'dfc_vae_resnet':
        encoder = []
        for i, f in enumerate((32, 64, 128, 256)):
            encoder += [_conv(f, 4, 2, f'Conv2d_{i + 1}a'), ResidualRepeat(f, 4, name=f'Conv2d_{i + 1}b')]
        decoder = []
        for i, f in enumerate((128, 64, 32, 3)):
            decoder += [_upsample(i + 1), _conv(f, 3, 1, f'Conv2d_{i + 1}a'), ResidualRepeat(f, 3, name=f'Conv2d_{i + 1}b')]
        decoder.append(_conv(3, 3, 1, 'Conv2d_4c', activation=False))
        return 64, encoder, decoder
    raise ValueError(f'unknown VAE {architecture!r}: use one of {", ".join(ARCHITECTURES)}')


class Vae(keras.Model):
    """The original's `Vae(latent_variable_dim)`: `encoder(images, is_training)` -> (mean, log
    variance), `decoder(latent_var, is_training)` -> images, `get_image_size()`; images are
    normalised by the dataset statistics (see losses.normalize). Variables exist once built
    (`build_variables`, or the first call)."""

    def __init__(self, latent_variable_dim, architecture='dfc_vae', **kwargs):
        super().__init__(name=kwargs.pop('name', 'vae'), **kwargs)
        self.architecture = architecture
        self.latent_variable_dim = int(latent_variable_dim)
        self.image_size, encoder_parts, decoder_parts = _layers(architecture)
        self.encoder_network = Encoder(encoder_parts, self.latent_variable_dim, name='encoder')
        self.decoder_network = Decoder(decoder_parts, name='decoder')

    def get_image_size(self):
        return self.image_size

    def encoder(self, images, is_training):
        return self.encoder_network(images, training=is_training)

    def decoder(self, latent_var, is_training):
        return self.decoder_network(latent_var, training=is_training)

    def call(self, images, training=None):
        """The mean's reconstruction, (mean, log variance): no sampling."""
        mean, log_variance = self.encoder(images, training)
        return self.decoder(mean, training), mean, log_variance

    def build_variables(self):
        self(ops.zeros((1, self.image_size, self.image_size, 3)), training=False)
        return self

    def get_config(self):
        return {'latent_variable_dim': self.latent_variable_dim, 'architecture': self.architecture}


def vae_variable_name(model, variable):
    """The original name of one of the VAE's variables (its Keras path less the model's name)."""
    path = variable.path
    prefix = model.name + '/'
    return original_name('', path[len(prefix):] if path.startswith(prefix) else path)


def original_weights(model):
    """{original variable name: array} of a built Vae: what the original's checkpoint held."""
    return {vae_variable_name(model, v): v.numpy() for v in model.weights}


class DfcVae(Vae):
    """generative.models.dfc_vae.Vae: 64 px."""

    def __init__(self, latent_variable_dim, **kwargs):
        super().__init__(latent_variable_dim, 'dfc_vae', **kwargs)

    def get_config(self):
        return {'latent_variable_dim': self.latent_variable_dim}


class DfcVaeLarge(Vae):
    """generative.models.dfc_vae_large.Vae: 128 px, a fifth stage in encoder and decoder."""

    def __init__(self, latent_variable_dim, **kwargs):
        super().__init__(latent_variable_dim, 'dfc_vae_large', **kwargs)

    def get_config(self):
        return {'latent_variable_dim': self.latent_variable_dim}


class DfcVaeResnet(Vae):
    """generative.models.dfc_vae_resnet.Vae: 64 px, three residual convolutions after each stage."""

    def __init__(self, latent_variable_dim, **kwargs):
        super().__init__(latent_variable_dim, 'dfc_vae_resnet', **kwargs)

    def get_config(self):
        return {'latent_variable_dim': self.latent_variable_dim}


ARCHITECTURE_CLASSES = {'dfc_vae': DfcVae, 'dfc_vae_large': DfcVaeLarge, 'dfc_vae_resnet': DfcVaeResnet}
