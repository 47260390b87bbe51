"""Training: TF1 optimizers and the core that train_softmax.py and train_tripletloss.py share."""
