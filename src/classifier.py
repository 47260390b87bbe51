"""The original's classifier.py, run by path; its body is facenet_tf2.commands.classifier."""
from facenet_tf2.commands.classifier import cli

if __name__ == '__main__':
    cli()
