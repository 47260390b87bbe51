"""The original's `generative.models`: `--vae_def generative.models.dfc_vae` and the like."""
