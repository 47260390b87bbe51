"""Writing output files atomically, so an interrupted run never leaves a half-written file."""
import contextlib
import os
import stat
import tempfile


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
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes the file private
        os.replace(temporary, filename)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
