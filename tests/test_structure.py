"""The layout contract: the library `facenet_tf2` stands on its own (it imports none of the
script-level names: the original's facades `facenet`, `lfw`, `align`, `models`, `generative` and the scripts in
src/), its modules import each other without cycles, and a wheel built from the repository installs
exactly the intended top-level names and commands."""
import ast
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import REPO_ROOT, SRC

LIBRARY = SRC / 'facenet_tf2'
INSTALLED_TOP_LEVEL = {'facenet_tf2', 'facenet', 'lfw', 'align', 'models', 'generative'}


def script_level_names():
    """What lives in src/ beside the library: the facades and the runnable scripts."""
    names = {path.stem for path in SRC.glob('*.py')}
    names |= {path.name for path in SRC.iterdir() if path.is_dir() and (path / '__init__.py').exists()}
    return names - {'facenet_tf2'}


def module_name(path):
    parts = path.relative_to(SRC).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imports_of(path):
    """Every module `path` imports (module level and inside functions), as absolute names; for
    `from package import name`, package.name when that is a module of the library."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f'{path}: relative import; the library uses absolute imports'
            found.add(node.module)
            for alias in node.names:
                candidate = f'{node.module}.{alias.name}'
                if _library_file(candidate) is not None:
                    found.add(candidate)
    return found


def _library_file(name):
    if not name.startswith('facenet_tf2'):
        return None
    base = SRC.joinpath(*name.split('.'))
    for candidate in (base.with_suffix('.py'), base / '__init__.py'):
        if candidate.exists():
            return candidate
    return None


def library_import_graph():
    graph = {}
    for path in sorted(LIBRARY.rglob('*.py')):
        graph[module_name(path)] = {name for name in imports_of(path) if _library_file(name) is not None}
    return graph


def test_the_library_imports_nothing_from_the_script_level():
    forbidden = script_level_names()
    assert {'facenet', 'lfw', 'align', 'models', 'generative', 'compare', 'train_softmax'} <= forbidden
    offenders = []
    for path in sorted(LIBRARY.rglob('*.py')):
        for name in imports_of(path):
            if name.split('.')[0] in forbidden:
                offenders.append(f'{path.relative_to(SRC)} imports {name}')
    assert not offenders, '\n'.join(offenders)


def test_every_library_import_names_a_module_that_exists():
    missing = []
    for path in sorted(LIBRARY.rglob('*.py')):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) else []
            missing += [f'{path.relative_to(SRC)} imports {name}' for name in names
                        if name.startswith('facenet_tf2') and _library_file(name) is None]
    assert not missing, '\n'.join(missing)


def find_cycle(graph):
    """One import cycle of `graph` as a list of modules, or None."""
    state = {}
    stack = []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target == node or target not in graph:
                continue
            if state.get(target) == 'open':
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 'done'
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': set()}) is None


def test_the_library_has_no_import_cycles():
    graph = library_import_graph()
    # A package's __init__ is imported before its modules, so a module importing its own package
    # (or a parent) is no cycle; only module-to-module edges count.
    edges = {node: {t for t in targets if not node.startswith(t + '.')} for node, targets in graph.items()}
    cycle = find_cycle(edges)
    assert cycle is None, ' -> '.join(cycle)


def test_errors_live_in_one_leaf_module():
    graph = library_import_graph()
    assert graph['facenet_tf2.errors'] == set()
    defined = []
    for path in sorted(LIBRARY.rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name.endswith('Error'):
                defined.append(f'{module_name(path)}.{node.name}')
    assert defined and all(name.startswith('facenet_tf2.errors.') for name in defined), defined


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp('wheel')
    build = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--quiet', '-w', str(out),
                            str(REPO_ROOT)], capture_output=True, text=True, timeout=600)
    if build.returncode != 0 and 'Could not find a version that satisfies the requirement setuptools' in build.stderr:
        pytest.skip('no package index to fetch setuptools from for the isolated wheel build')
    assert build.returncode == 0, build.stderr[-3000:]
    (path,) = out.glob('facenet_tf2-*.whl')
    return path


def test_the_wheel_holds_exactly_the_intended_top_level_names(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top_level = {name.split('/')[0].removesuffix('.py') for name in names if '.dist-info/' not in name}
    assert top_level == INSTALLED_TOP_LEVEL
    assert 'facenet_tf2/commands/train_softmax.py' in names and 'facenet_tf2/nets/inception_resnet_v1.py' in names
    assert 'facenet_tf2/serving/static/index.html' in names and 'generative/models/dfc_vae.py' in names


def test_a_fresh_install_of_the_wheel_imports_and_runs_its_commands(wheel, tmp_path):
    """A new virtualenv gets the wheel without dependencies; the dependencies already installed
    here are made visible through a path file, so nothing is downloaded."""
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True, timeout=300)
    python = venv / 'bin' / 'python'
    site = Path(subprocess.run([str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                               capture_output=True, text=True, check=True).stdout.strip())
    # The dependencies of this environment, without this checkout (its editable path is a .pth file
    # in that folder, which a plain path entry does not process).
    (site / 'dependencies.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    dist_info = next(site.glob('facenet_tf2-*.dist-info'))
    entry_points = (dist_info / 'entry_points.txt').read_text()
    commands = [line.split('=')[0].strip() for line in entry_points.splitlines() if line.startswith('facenet-')]
    assert {'facenet-align', 'facenet-train-softmax', 'facenet-train-tripletloss', 'facenet-compare'} <= set(commands)
    env = {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}
    code = ('import importlib.metadata as m, facenet, lfw, align.detect_face, models.inception_resnet_v1\n'
            'import generative.models.dfc_vae\n'
            'import facenet_tf2, sys\n'
            'assert facenet.__file__.startswith(sys.argv[1]), facenet.__file__\n'
            'for ep in m.entry_points(group="console_scripts"):\n'
            '    if ep.dist is not None and ep.dist.name == "facenet-tf2":\n'
            '        ep.load()\n'
            'from facenet_tf2.commands import compare\n'
            'compare.parse_arguments(["--help"])\n')
    result = subprocess.run([str(python), '-c', code, str(site)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'usage:' in result.stdout
    for module in ('compare', 'train_softmax', 'validate_on_lfw'):
        probe = subprocess.run([str(python), '-c', f'import {module}'], cwd=tmp_path, env=env, capture_output=True,
                               text=True, timeout=300)
        assert probe.returncode != 0 and 'No module named' in probe.stderr, f'{module} is installed as a top-level name'
