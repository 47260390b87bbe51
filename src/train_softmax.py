"""The original's train_softmax.py, run by path; its body is facenet_tf2.commands.train_softmax."""
from facenet_tf2.commands.train_softmax import cli

if __name__ == '__main__':
    cli()
