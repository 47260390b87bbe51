"""argparse value types shared by the scripts."""
import argparse


def positive_int(text):
    """An int of at least 1 (batch sizes, fold and pair counts), refused by argparse otherwise."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value


def str2bool(value):
    """A real boolean: the original's type=bool made any non-empty string, "False" too, true."""
    if isinstance(value, bool):
        return value
    if value.lower() in ('1', 'true', 'yes', 'y', 'on'):
        return True
    if value.lower() in ('0', 'false', 'no', 'n', 'off', ''):
        return False
    raise argparse.ArgumentTypeError(f'expected a boolean (True/False), got {value!r}')
