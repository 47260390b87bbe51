"""Small training sets and trainer runs for the training tests.

The training sets are generated identities (conftest.identities), small enough that a run of
models.dummy takes seconds; `run_trainer` runs a training script by path in a fresh process, as a
user would, with the repository's src first on the path; `run_in_process` runs its command here.
"""
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_SIZE = 24


def tiny_run_arguments(data_dir, base, *extra):
    """A train_softmax.py/train_tripletloss.py command line for models.dummy on tiny faces."""
    return ['--data_dir', str(data_dir), '--models_base_dir', str(Path(base) / 'models'),
            '--logs_base_dir', str(Path(base) / 'logs'), '--model_def', 'models.dummy',
            '--image_size', str(TINY_SIZE), '--embedding_size', '8', *map(str, extra)]


def script_environment():
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(REPO_ROOT / 'src'), env.get('PYTHONPATH', '')])
    env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    env.pop('FACENET_TF2_DEBUG', None)
    return env


def run_trainer(script, arguments, timeout=300, cwd=None):
    """Runs src/<script> with `arguments`; returns the CompletedProcess (text output)."""
    return subprocess.run([sys.executable, str(REPO_ROOT / 'src' / script), *arguments], cwd=cwd or REPO_ROOT,
                          env=script_environment(), capture_output=True, text=True, timeout=timeout, check=False)


def start_trainer(script, arguments, cwd=None):
    return subprocess.Popen([sys.executable, str(REPO_ROOT / 'src' / script), *arguments], cwd=cwd or REPO_ROOT,
                            env=script_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_at_line(process, prefix):
    """Reads a started trainer's output until a line starts with `prefix`, then SIGKILLs it;
    returns how many epochs it had saved ('Saving statistics' lines) by then."""
    saved_epochs = 0
    for line in process.stdout:
        saved_epochs += line.startswith('Saving statistics')
        if line.startswith(prefix):
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, f'the run ended before printing {prefix!r}'
    return saved_epochs


def the_run_folder(base):
    """The one run folder under base/models."""
    runs = sorted((Path(base) / 'models').iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def free_localhost_ports(count):
    """`count` TCP ports free on localhost now (for local multi-worker clusters)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(('localhost', 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_in_process(command_module, arguments, capsys):
    """Runs a trainer's command in this process as its console command would (one-line user
    errors, exit status): a CompletedProcess-like result, as run_trainer's, without a new process."""
    from facenet_tf2.cli import run_script  # pylint: disable=import-outside-toplevel
    capsys.readouterr()
    prog = command_module.__name__.rsplit('.', 1)[-1] + '.py'
    try:
        run_script(command_module.main, command_module.parse_arguments, argv=[str(a) for a in arguments], prog=prog)
        returncode = 0
    except SystemExit as stop:
        returncode = 1 if isinstance(stop.code, str) else (stop.code or 0)
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(arguments, returncode, captured.out, captured.err)
