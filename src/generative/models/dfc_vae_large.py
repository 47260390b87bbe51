"""generative.models.dfc_vae_large: the original's DFC-VAE (128 px), a Keras model with the original variable names."""
from facenet_tf2.generative.models import DfcVaeLarge as Vae, leaky_relu  # noqa: F401
