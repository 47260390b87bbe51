"""The original's freeze_graph.py, run by path; its body is facenet_tf2.commands.freeze_graph."""
from facenet_tf2.commands.freeze_graph import cli

if __name__ == '__main__':
    cli()
