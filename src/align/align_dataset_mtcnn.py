"""The original's align_dataset_mtcnn.py, run by path; its body is facenet_tf2.commands.align_dataset_mtcnn."""
import os
import sys

if __package__ in (None, ''):
    # Run by path (python src/align/align_dataset_mtcnn.py), as the original documented: make src/ importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from facenet_tf2.commands.align_dataset_mtcnn import cli  # noqa: E402 pylint: disable=wrong-import-position

if __name__ == '__main__':
    cli()
