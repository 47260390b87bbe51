"""generative.models.dfc_vae: the original's DFC-VAE (64 px), a Keras model with the original variable names."""
from facenet_tf2.generative.models import DfcVae as Vae, leaky_relu  # noqa: F401
