"""generative.models.dfc_vae_resnet: the original's DFC-VAE (64 px, residual), a Keras model with the original variable names."""
from facenet_tf2.generative.models import DfcVaeResnet as Vae, leaky_relu  # noqa: F401
