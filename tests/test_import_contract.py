"""The original told users to `export PYTHONPATH=.../facenet/src`. After `pip install -e .` none of
that is needed: from any working directory, with no PYTHONPATH, the original imports resolve, the
scripts run by path from the repository root, and the console commands exist."""
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, SRC

CONTRACT_IMPORTS = ['facenet', 'lfw', 'align.detect_face', 'models.inception_resnet_v1']
SCRIPTS = sorted(str(path.relative_to(REPO_ROOT))
                 for path in [*SRC.glob('*.py'), *SRC.glob('align/*.py'), *REPO_ROOT.glob('contributed/*.py')]
                 if "if __name__ == '__main__':" in path.read_text())


def _clean_env():
    env = {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}
    env['TF_CPP_MIN_LOG_LEVEL'] = '3'
    return env


@pytest.fixture(scope='module')
def installed_here():
    """The contract is about an installed checkout: skip (saying why) when the installed
    facenet-tf2 is another checkout, e.g. a git worktree next to the one installed."""
    probe = subprocess.run([sys.executable, '-c', 'import facenet; print(facenet.__file__)'], cwd='/',
                           env=_clean_env(), capture_output=True, text=True)
    assert probe.returncode == 0, f'`import facenet` fails outside the repository:\n{probe.stderr[-2000:]}'
    installed = Path(probe.stdout.strip().splitlines()[-1]).resolve()
    if installed != SRC / 'facenet.py':
        pytest.skip(f'facenet-tf2 is installed from {installed.parent.parent}, not this checkout')


def test_original_imports_resolve_from_anywhere(installed_here, tmp_path):
    code = ('import importlib\n'
            f'for name in {CONTRACT_IMPORTS!r}:\n'
            '    module = importlib.import_module(name)\n'
            '    print(name, module.__file__)\n'
            'import facenet\n'
            'assert callable(facenet.get_dataset) and callable(facenet.prewhiten) and callable(facenet.load_model)\n')
    result = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=_clean_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in CONTRACT_IMPORTS:
        assert f'{name} {SRC}' in result.stdout


def test_every_script_runs_by_path_from_the_repo_root(installed_here):
    assert {'src/align/align_dataset_mtcnn.py', 'src/validate_on_lfw.py', 'src/classifier.py',
            'contributed/export_embeddings.py'} <= set(SCRIPTS)
    runs = {script: subprocess.Popen([sys.executable, script, '--help'], cwd=REPO_ROOT, env=_clean_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for script in SCRIPTS}
    for script, run in runs.items():
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, f'{script} --help failed:\n{err[-2000:]}'
        assert 'usage:' in out


def test_console_commands_point_at_script_entry_functions(installed_here):
    points = {ep.name: ep for ep in importlib.metadata.entry_points(group='console_scripts')
              if ep.dist is not None and ep.dist.name == 'facenet-tf2'}
    assert {'facenet-align', 'facenet-validate-lfw', 'facenet-compare', 'facenet-freeze-graph',
            'facenet-generate-pairs', 'facenet-classifier'} <= set(points)
    for ep in points.values():
        assert callable(ep.load()), ep.value
