"""The original's compare.py, run by path; its body is facenet_tf2.commands.compare."""
from facenet_tf2.commands.compare import cli

if __name__ == '__main__':
    cli()
