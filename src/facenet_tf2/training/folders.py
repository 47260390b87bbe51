"""A run's folders, new or resumed: `models_base_dir/<YYYYmmdd-HHMMSS>/` and `logs_base_dir/<subdir>/`.

The model folder holds the original's checkpoints and metagraph (checkpoints.py) and, beside them,
`training_state/` (state.py) and `run.json` (the run's arguments). The log folder holds the event
files, `arguments.txt`, `revision_info.txt`, `stat.h5` and `lfw_result.txt`, as the original's. A
run started again with the same arguments continues the newest unfinished run folder that has them.
"""
import json
import os
import sys
from datetime import datetime

import tensorflow as tf

from facenet_tf2.files import atomic_path
from facenet_tf2.runfiles import store_revision_info, write_arguments_to_file

RUN_FILE = 'run.json'
STATE_DIR = 'training_state'
FINISHED_FILE = 'finished'


class RunFolders:
    """The log and model folders of the run `config` describes: resumed (`resumed` True) when an
    unfinished run with the same arguments exists and --no_resume is not given, else new."""

    def __init__(self, config, script_path):
        self.arguments = config.run_arguments()
        self.subdir, self.model_dir, self.resumed = open_model_folder(config.models_base_dir, self.arguments,
                                                                      config.no_resume)
        self.log_dir = os.path.join(os.path.expanduser(config.logs_base_dir), self.subdir)
        self.state_dir = os.path.join(self.model_dir, STATE_DIR)
        os.makedirs(self.log_dir, exist_ok=True)
        write_arguments_to_file(config.as_dict(), os.path.join(self.log_dir, 'arguments.txt'))
        store_revision_info(os.path.dirname(os.path.realpath(script_path)), self.log_dir, ' '.join(sys.argv))

    def mark_finished(self):
        mark_finished(self.model_dir)


def open_model_folder(models_base_dir, arguments, no_resume=False):
    """(subdir, model_dir, resumed): the newest unfinished run folder of models_base_dir started with
    `arguments` (unless no_resume), else a new `<YYYYmmdd-HHMMSS>` one recording them in run.json."""
    models_base_dir = os.path.expanduser(models_base_dir)
    previous = None if no_resume else find_resumable_run(models_base_dir, arguments)
    subdir = previous or datetime.strftime(datetime.now(), '%Y%m%d-%H%M%S')
    model_dir = os.path.join(models_base_dir, subdir)
    os.makedirs(model_dir, exist_ok=True)
    if previous is None:
        with atomic_path(os.path.join(model_dir, RUN_FILE)) as temporary, open(temporary, 'w') as f:
            json.dump({'arguments': arguments}, f, indent=1, default=str)
    return subdir, model_dir, previous is not None


def mark_finished(model_dir):
    """A finished run is never resumed."""
    with open(os.path.join(model_dir, FINISHED_FILE), 'w') as f:
        f.write(datetime.now().isoformat() + '\n')


def find_resumable_run(models_base_dir, arguments):
    """The newest run folder under models_base_dir that ran with `arguments`, has a training
    state and did not finish; None if there is none."""
    if not os.path.isdir(models_base_dir):
        return None
    for subdir in sorted(os.listdir(models_base_dir), reverse=True):
        folder = os.path.join(models_base_dir, subdir)
        if os.path.exists(os.path.join(folder, FINISHED_FILE)) or \
                tf.train.latest_checkpoint(os.path.join(folder, STATE_DIR)) is None:
            continue
        try:
            with open(os.path.join(folder, RUN_FILE)) as f:
                recorded = json.load(f)['arguments']
        except (OSError, ValueError, KeyError):
            continue
        if recorded == json.loads(json.dumps(arguments, default=str)):
            return subdir
    return None
