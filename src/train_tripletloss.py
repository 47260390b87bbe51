"""The original's train_tripletloss.py, run by path; its body is facenet_tf2.commands.train_tripletloss."""
from facenet_tf2.commands.train_tripletloss import cli

if __name__ == '__main__':
    cli()
