"""The original's src/generative/: a Deep-Feature-Consistent variational autoencoder of aligned faces
(models.py), its losses (losses.py), training (training.py), attribute vectors (attributes.py) and the
VAE checkpoints they share (checkpoints.py)."""
