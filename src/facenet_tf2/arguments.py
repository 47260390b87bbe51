"""argparse value types shared by the scripts."""
import argparse


def positive_int(text):
    """An int of at least 1 (batch sizes, fold and pair counts), refused by argparse otherwise."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value
