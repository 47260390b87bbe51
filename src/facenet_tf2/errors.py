"""Every error the library raises on purpose, in one leaf module that imports nothing.

UserError: a wrong argument or input, whose message says what is wrong and what to do. PathError
and its kinds: a file or folder that cannot be used, named in the message. The scripts turn all
of them into one line (facenet_tf2.cli.run_script); anything else is a bug and keeps its traceback.
"""


class UserError(ValueError):
    """A wrong argument or input; the message says what is wrong and what to do."""


class PathError(ValueError):
    """A file or folder that cannot be used; the message names the path and the problem."""

    def __init__(self, path, problem):
        super().__init__(f'{path}: {problem}')
        self.path = path
        self.problem = problem


class ImageReadError(PathError):
    """An image file that cannot be read; the message names the file and the problem."""


class ModelLoadError(PathError):
    """A model file or folder that cannot be used; the message names the path and the problem."""


class PretrainedModelError(ModelLoadError):
    """A named model that cannot be downloaded or whose cached file is not the pinned one."""


class TrainingInputError(UserError):
    """A training run that cannot start; the message says what is wrong and what to do."""


class NonFiniteLoss(UserError):
    """The loss became NaN or Inf: the run stops, with one line, and keeps its last good checkpoint."""


class FaissMissing(UserError):
    """FAISS search was asked for but the `faiss` extra is not installed."""


class ApiError(Exception):
    """A request the service refuses: the HTTP `status` and a one-line `message` for its JSON body."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = ' '.join(str(message).split())


class ImageSizeError(UserError):
    """Images of another size than the network takes."""


class RuntimeMissing(UserError):
    """An optional runtime (ONNX Runtime, tf2onnx, LiteRT) was needed but its extra is not installed."""
