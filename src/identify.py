"""The original's identify.py, run by path; its body is facenet_tf2.commands.identify."""
from facenet_tf2.commands.identify import cli

if __name__ == '__main__':
    cli()
