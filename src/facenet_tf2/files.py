"""Writing outputs atomically, so that an interrupted run never leaves a half-written file."""
import contextlib
import os
import shutil
import stat
import tempfile


def _default_mode(mode):
    """`mode` less the process umask: what a file or folder created the usual way would get
    (mkstemp and mkdtemp make them private)."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


@contextlib.contextmanager
def atomic_path(filename):
    """Yields a temporary path beside `filename`; on success it replaces `filename` in one step.

    The temporary name is unique and keeps the suffix, so writers that pick a format from it
    (np.savez, matplotlib's savefig) write the intended one; the file gets a normal file's mode.
    Parent folders are created; on an error the temporary file is removed and `filename` is left
    as it was. A symbolic link is followed (its target is replaced); a destination that exists but
    is no regular file (/dev/stdout, a FIFO) is written directly, since replacing it would
    destroy it.
    """
    filename = os.path.expanduser(str(filename))
    if os.path.exists(filename) and not stat.S_ISREG(os.stat(filename).st_mode):
        yield filename
        return
    filename = os.path.realpath(filename)
    folder, name = os.path.split(filename)
    os.makedirs(folder, exist_ok=True)
    stem, suffix = os.path.splitext(name)
    handle, temporary = tempfile.mkstemp(prefix=f'.{stem}.', suffix=f'.tmp{suffix}', dir=folder)
    os.close(handle)
    try:
        yield temporary
        os.chmod(temporary, _default_mode(0o666))
        os.replace(temporary, filename)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_bytes_atomically(filename, data):
    with atomic_path(filename) as temporary, open(temporary, 'wb') as f:
        f.write(data)


@contextlib.contextmanager
def atomic_directory(path):
    """Yields a temporary folder beside `path`, moved to `path` when the block succeeds (an older
    folder there is replaced only then)."""
    path = os.path.abspath(os.path.expanduser(str(path)))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=f'.{os.path.basename(path)}.', dir=os.path.dirname(path))
    try:
        yield temporary
        os.chmod(temporary, _default_mode(0o777))
        if os.path.exists(path):
            old = temporary + '.old'
            os.replace(path, old)
            os.replace(temporary, path)
            shutil.rmtree(old)
        else:
            os.replace(temporary, path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
