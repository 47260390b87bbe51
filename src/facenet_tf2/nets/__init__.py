"""The embedding networks (--model_def), built of the slim-named layers in layers.py so that original weights load by name."""
