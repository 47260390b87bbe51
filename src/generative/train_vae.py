import os
import sys

# src/ on the path, as the original's PYTHONPATH had it, so `--vae_def generative.models.dfc_vae` imports
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from facenet_tf2.commands.train_vae import cli  # noqa: E402

if __name__ == '__main__':
    cli()
