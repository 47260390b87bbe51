"""Writing output files atomically, so an interrupted run never leaves a half-written file."""
import contextlib
import os
import stat


@contextlib.contextmanager
def atomic_path(filename):
    """Yields a temporary path beside `filename`; on success it replaces `filename` in one step.

    The temporary name keeps the suffix, so writers that pick a format from it (np.savez,
    matplotlib's savefig) write the intended one. Parent folders are created; on an error the
    temporary file is removed and `filename` is left as it was. A symbolic link is followed (its
    target is replaced); a destination that exists but is no regular file (/dev/stdout, a FIFO)
    is written directly, since replacing it would destroy it.
    """
    filename = os.path.expanduser(str(filename))
    if os.path.exists(filename) and not stat.S_ISREG(os.stat(filename).st_mode):
        yield filename
        return
    filename = os.path.realpath(filename)
    folder, name = os.path.split(filename)
    os.makedirs(folder, exist_ok=True)
    stem, suffix = os.path.splitext(name)
    temporary = os.path.join(folder, f'.{stem}.tmp{os.getpid()}{suffix}')
    try:
        yield temporary
        os.replace(temporary, filename)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
