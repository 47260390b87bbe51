"""The training core shared by train_softmax.py and train_tripletloss.py (see core.py)."""
