"""Small text files a training or evaluation run reads and writes: the learning-rate schedule,
the arguments it ran with and the revision of the code."""
import os
import subprocess

# What get_learning_rate_from_file returns when training should stop. Like a negative rate in the
# schedule file, it makes the original's `if lr <= 0: stop` check end training cleanly.
LEARNING_RATE_STOP = -1.0


def read_learning_rate_schedule(filename):
    """Parses a schedule file of `epoch: learning_rate` lines (`#` starts a comment, a negative
    rate or `-` means stop) into a list of (epoch, rate) sorted by epoch."""
    schedule = []
    with open(filename, 'r') as f:
        for line_number, raw in enumerate(f, start=1):
            line = raw.split('#', 1)[0].strip()
            if not line:
                continue
            epoch_text, sep, rate_text = line.partition(':')
            try:
                if not sep:
                    raise ValueError
                epoch = int(epoch_text)
                rate = LEARNING_RATE_STOP if rate_text.strip() == '-' else float(rate_text)
            except ValueError:
                raise ValueError(f'{filename}:{line_number}: expected "epoch: learning_rate", got {raw.strip()!r}') from None
            schedule.append((epoch, rate))
    if not schedule:
        raise ValueError(f'{filename}: no "epoch: learning_rate" lines')
    return sorted(schedule, key=lambda entry: entry[0])


def get_learning_rate_from_file(filename, epoch):
    """The learning rate for `epoch`: the rate of the last line whose epoch is <= `epoch`.

    The last line marks the end of the schedule (usually written `N: -1`): from its epoch on,
    LEARNING_RATE_STOP (-1.0) is returned. The original returned None there, which stopped
    training under Python 2 and crashes the `lr <= 0` check under Python 3.
    """
    schedule = read_learning_rate_schedule(filename)
    if epoch < schedule[0][0]:
        raise ValueError(f'{filename}: the schedule starts at epoch {schedule[0][0]}, no learning rate for epoch {epoch}')
    if epoch >= schedule[-1][0]:
        return LEARNING_RATE_STOP
    return [rate for start, rate in schedule if start <= epoch][-1]


def write_arguments_to_file(args, filename):
    """Writes `key: value` lines of an argparse Namespace or a mapping of arguments."""
    items = args.items() if isinstance(args, dict) else vars(args).items()
    with open(filename, 'w') as f:
        for key, value in items:
            f.write(f'{key}: {value}\n')


def _git(src_path, *command):
    try:
        result = subprocess.run(['git', *command], cwd=src_path, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f'git {" ".join(command)}: {e}'
    if result.returncode != 0:
        return f'git {" ".join(command)}: {result.stderr.strip() or "failed"}'
    return result.stdout.strip()


def store_revision_info(src_path, output_dir, arg_string):
    """Writes revision_info.txt into output_dir: arguments, TensorFlow version, git hash and diff."""
    import tensorflow as tf

    with open(os.path.join(output_dir, 'revision_info.txt'), 'w') as text_file:
        text_file.write(f'arguments: {arg_string}\n--------------------\n')
        text_file.write(f'tensorflow version: {tf.__version__}\n--------------------\n')
        text_file.write(f'git hash: {_git(src_path, "rev-parse", "HEAD")}\n--------------------\n')
        text_file.write(_git(src_path, 'diff', 'HEAD'))
