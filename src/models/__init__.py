"""Face embedding networks; pass one to the scripts as --model_def models.<name>."""
