"""Small real-face training sets and trainer runs for the training tests.

Faces come from the shared LFW images (the tests using them skip when it is absent), centre
cropped and shrunk so that a run of models.dummy takes seconds; `run_trainer` runs a training
script by path in a fresh process, as a user would, with the repository's src first on the path.
"""
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_SIZE = 24


def write_face_folders(lfw_dir, folder, nrof_people=4, images_per_person=4, size=TINY_SIZE + 4, min_images=None):
    """Copies the first people of LFW with enough images as `size`-pixel centre crops (PNG),
    one folder per person; returns the folder."""
    folder = Path(folder)
    min_images = min_images or images_per_person
    people = [p for p in sorted(os.listdir(lfw_dir)) if len(os.listdir(Path(lfw_dir) / p)) >= min_images][:nrof_people]
    for person in people:
        (folder / person).mkdir(parents=True, exist_ok=True)
        for name in sorted(os.listdir(Path(lfw_dir) / person))[:images_per_person]:
            face = Image.open(Path(lfw_dir) / person / name).crop((45, 45, 205, 205)).resize((size, size),
                                                                                            Image.BILINEAR)
            face.save(folder / person / (Path(name).stem + '.png'))
    return folder


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
