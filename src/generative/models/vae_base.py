"""generative.models.vae_base: the base class of the VAEs (facenet_tf2.generative.models.Vae)."""
from facenet_tf2.generative.models import Vae  # noqa: F401
