"""The original's generate_pairs.py, run by path; its body is facenet_tf2.commands.generate_pairs."""
from facenet_tf2.commands.generate_pairs import cli

if __name__ == '__main__':
    cli()
