"""One-line errors for the scripts: a user error prints `<script>: <what is wrong>, <what to do>` and
exits with status 1; anything else is a bug and keeps its traceback.

    from facenet_tf2.cli import UserError, run_script

    def main(args):
        if ...:
            raise UserError(f'{args.x} is ..., give ...')
    def cli():
        run_script(main, parse_arguments)

User errors are UserError, the library's PathError family (ModelLoadError, PretrainedModelError,
ImageReadError: they name the file) and the OSErrors of files the user named (missing, a folder
where a file was expected, no permission). Set FACENET_TF2_DEBUG=1 to see their traceback too.
The `check_*` helpers check the user's paths before any slow work starts.
"""
import os
import sys

from facenet_tf2.errors import PathError, UserError
from facenet_tf2.reporting import show_on_console

DEBUG_VARIABLE = 'FACENET_TF2_DEBUG'

_USER_OS_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


def error_line(error):
    """The one-line text of a user error."""
    if isinstance(error, OSError) and error.filename is not None:
        text = f'{error.filename}: {error.strerror or error}'
    else:
        text = str(error)
    return ' '.join(text.split())


def debugging():
    return os.environ.get(DEBUG_VARIABLE, '').lower() not in ('', '0', 'false', 'no')


def run_script(main, parse_arguments, argv=None, prog=None):
    """Parses the arguments (sys.argv[1:] by default) and runs main(args), turning user errors and
    Ctrl-C into one line on stderr and a non-zero exit. Returns what main returns."""
    prog = prog or os.path.basename(sys.argv[0]) or 'facenet'
    show_on_console()
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    try:
        return main(args)
    except (UserError, PathError, *_USER_OS_ERRORS) as e:
        if debugging():
            raise
        sys.exit(f'{prog}: {error_line(e)}')
    except KeyboardInterrupt:
        if debugging():
            raise
        sys.exit(f'{prog}: interrupted; run the same command again to go on where it makes sense (align resumes)')


def check_input_dir(path, what='input folder'):
    """`path`, user-expanded, if it is a folder."""
    expanded = os.path.expanduser(str(path))
    if not os.path.exists(expanded):
        raise UserError(f'{path}: no such {what}, check the path')
    if not os.path.isdir(expanded):
        raise UserError(f'{path}: is a file, not a folder; give the {what}')
    return expanded


def check_input_file(path, what='file'):
    """`path`, user-expanded, if it is a readable file."""
    expanded = os.path.expanduser(str(path))
    if not os.path.exists(expanded):
        raise UserError(f'{path}: no such {what}, check the path')
    if os.path.isdir(expanded):
        raise UserError(f'{path}: is a folder, not a file; give the {what}')
    return expanded


def check_output_dir(path):
    """`path`, user-expanded, if it is a folder or can be made one (nothing is created yet)."""
    expanded = os.path.expanduser(str(path))
    if os.path.exists(expanded) and not os.path.isdir(expanded):
        raise UserError(f'{path}: is a file, not a folder; give a folder for the outputs')
    _check_parents(path, expanded)
    return expanded


def check_output_file(path):
    """`path`, user-expanded, if a file can be written there (nothing is created yet)."""
    expanded = os.path.expanduser(str(path))
    if os.path.isdir(expanded):
        raise UserError(f'{path}: is a folder; give a file name for the output')
    _check_parents(path, expanded)
    return expanded


def _check_parents(path, expanded):
    parent = os.path.dirname(os.path.abspath(expanded))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UserError(f'{path}: {parent} is a file, not a folder; choose another output path')
