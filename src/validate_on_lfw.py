"""The original's validate_on_lfw.py, run by path; its body is facenet_tf2.commands.validate_on_lfw."""
from facenet_tf2.commands.validate_on_lfw import cli

if __name__ == '__main__':
    cli()
