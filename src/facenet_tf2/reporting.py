"""How the library reports: its modules log to loggers under `facenet_tf2` (progress the original
printed at INFO, problems at WARNING) and never print. The commands show that as the original's
scripts printed it: `show_on_console()` writes INFO lines as they are to standard output and
warnings as `WARNING: ...` to standard error. Programs using the library choose for themselves
(standard `logging` configuration); without any, only warnings show.
"""
import logging
import sys

LIBRARY_LOGGER = 'facenet_tf2'


class _ConsoleHandler(logging.Handler):
    """Writes to the sys.stdout / sys.stderr of the moment (so redirections made later apply)."""

    def emit(self, record):
        try:
            if record.levelno >= logging.WARNING:
                stream, text = sys.stderr, f'{record.levelname}: {record.getMessage()}'
            else:
                stream, text = sys.stdout, record.getMessage()
            stream.write(text + '\n')
            stream.flush()
        except Exception:  # pylint: disable=broad-except  # logging must never raise
            self.handleError(record)


def show_on_console():
    """Shows the library's progress and warnings on the console (idempotent)."""
    logger = logging.getLogger(LIBRARY_LOGGER)
    if not any(isinstance(handler, _ConsoleHandler) for handler in logger.handlers):
        logger.addHandler(_ConsoleHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False
