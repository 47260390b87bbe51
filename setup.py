"""facenet-tf2's metadata, packages and commands are in pyproject.toml; this file stays for tools and
habits (`python setup.py ...`, the original's layout) that look for it."""
from setuptools import setup

setup()
