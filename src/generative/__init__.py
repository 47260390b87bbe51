"""The original's `generative` package (VAE scripts and models); the code lives in facenet_tf2.generative."""
