"""One-line errors: every script turns a user error into `<script>: <what is wrong>, <what to do>` on
stderr and a non-zero exit, before any model is built or image embedded; FACENET_TF2_DEBUG=1 shows
the traceback instead.

One case per script runs as a real process (all at once, to share the TensorFlow start-up time);
the rest call the scripts' cli() in this process, which runs the same code (facenet_tf2.cli).
"""
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facenet_tf2.commands import classifier
from facenet_tf2.commands import compare
import facenet
from facenet_tf2.commands import freeze_graph
from facenet_tf2.commands import generate_pairs
from facenet_tf2.commands import validate_on_lfw
from facenet_tf2.commands import align_dataset_mtcnn
from facenet_tf2 import cli

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / 'data' / 'images' / 'Anthony_Hopkins_0001.jpg'
# TensorFlow's C++ start-up lines go to stderr before any Python runs; they are not the script's output.
TF_LOG_PREFIXES = ('I0000 ', 'W0000 ', 'E0000 ', 'WARNING: All log messages before absl', 'To enable the following')


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp('inputs')
    (root / 'flat').mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(root / 'flat' / 'a.png')
    (root / 'people' / 'Someone').mkdir(parents=True)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(root / 'people' / 'Someone' / 'Someone_0001.png')
    (root / 'empty').mkdir()
    (root / 'a_file').write_text('not a folder')
    (root / 'garbage.pb').write_bytes(b'\xff' * 64)
    (root / 'empty_pairs.txt').write_text('10\t300\n')
    (root / 'bad_pairs.txt').write_text('1\t1\nSomeone\t1\t1\nthis is garbage\n')
    (root / 'missing_pairs.txt').write_text('1\t1\nSomeone\t1\t2\nSomeone\t1\tOther\t1\n')
    (root / 'binary_pairs.txt').write_bytes(b'\x80\x81\xff\xfe' * 10)
    (root / 'dict.pkl').write_bytes(pickle.dumps({'not': 'a classifier'}))
    (root / 'garbage.pkl').write_bytes(b'not a pickle at all')
    return root


SCRIPT = {'compare.py': 'src/compare.py', 'validate_on_lfw.py': 'src/validate_on_lfw.py',
          'align_dataset_mtcnn.py': 'src/align/align_dataset_mtcnn.py', 'freeze_graph.py': 'src/freeze_graph.py',
          'classifier.py': 'src/classifier.py', 'export_embeddings.py': 'contributed/export_embeddings.py',
          'generate_pairs.py': 'src/generate_pairs.py'}


def process_cases(root):
    """(script, arguments, expected start of the line after `<script>: `) run as processes."""
    return [
        ('compare.py', ['no_such_model', SAMPLE], 'no_such_model: no such file or directory; give a model file'),
        ('validate_on_lfw.py', [root / 'people', 'no_such_model', '--lfw_pairs', root / 'bad_pairs.txt'],
         f'{root / "bad_pairs.txt"}:3: expected "name i j"'),
        ('align_dataset_mtcnn.py', [root / 'flat', root / 'out'], f'{root / "flat"}: 1 images but no identity'),
        ('freeze_graph.py', [root / 'garbage.pb', root / 'out.pb'], f'{root / "garbage.pb"}: not a frozen GraphDef'),
        ('classifier.py', ['CLASSIFY', root / 'people', 'no_such_model', root / 'dict.pkl'],
         f'{root / "dict.pkl"}: holds a dict, not the (classifier, class names)'),
        ('export_embeddings.py', ['no_such_model', root / 'people', '--output_dir', root / 'a_file'],
         f'{root / "a_file"}: is a file, not a folder'),
        ('generate_pairs.py', [root / 'empty', root / 'p.txt'], f'{root / "empty"}: no images in the dataset folder'),
    ]


@pytest.fixture(scope='module')
def process_results(inputs):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', PYTHONPATH=str(REPO_ROOT / 'src'))
    env.pop('FACENET_TF2_DEBUG', None)
    processes = [(case, subprocess.Popen([sys.executable, str(REPO_ROOT / SCRIPT[case[0]]), *map(str, case[1])],
                                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
                 for case in process_cases(inputs)]
    return [(case, process.wait(timeout=300), process.stderr.read()) for case, process in processes]


def test_each_script_prints_one_line_and_exits_non_zero(process_results, inputs):
    assert len(process_results) == len(SCRIPT)
    for (script, _, expected), returncode, stderr in process_results:
        lines = [line for line in stderr.splitlines() if not line.startswith(TF_LOG_PREFIXES)]
        assert returncode == 1, (script, stderr)
        assert len(lines) == 1 and lines[0].startswith(f'{script}: {expected}'), (script, stderr)
    assert not (inputs / 'out').exists()  # align checked its input before creating the output folder


def run_cli(module, argv, prog):
    """cli() of a script module with `argv`: the SystemExit's message, which Python prints to stderr."""
    with pytest.raises(SystemExit) as stop:
        cli.run_script(module.main, module.parse_arguments, [str(a) for a in argv], prog=prog)
    message = stop.value.code
    assert isinstance(message, str) and '\n' not in message and message.startswith(prog + ': ')
    return message[len(prog) + 2:]


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if a model is loaded: the errors must come first."""
    monkeypatch.setattr(facenet, 'load_model', lambda *a, **k: pytest.fail('a model was loaded before the check'))


def test_compare_errors(inputs, no_model):
    assert run_cli(compare, ['20180402-114759', inputs / 'nope.jpg'], 'compare.py') == \
        f'{inputs / "nope.jpg"}: no such image file, check the path'
    assert run_cli(compare, ['20180402-114759', inputs / 'empty'], 'compare.py').endswith(
        'is a folder, not a file; give the image file')


def test_compare_model_errors(inputs):
    assert run_cli(compare, [inputs / 'garbage.pb', SAMPLE], 'compare.py').startswith(
        f'{inputs / "garbage.pb"}: not a frozen GraphDef protobuf')
    assert run_cli(compare, [inputs / 'a_file', SAMPLE], 'compare.py').startswith(
        f'{inputs / "a_file"}: unknown model file type')


def test_validate_errors(inputs, no_model):
    def message(lfw_dir, pairs, *extra):
        return run_cli(validate_on_lfw, [lfw_dir, '20180402-114759', '--lfw_pairs', pairs, *extra],
                       'validate_on_lfw.py')
    people, pairs = inputs / 'people', inputs / 'missing_pairs.txt'
    assert message(inputs / 'nope', pairs) == f'{inputs / "nope"}: no such folder of aligned LFW images ' \
                                              '(align_dataset_mtcnn.py writes it), check the path'
    assert message(inputs / 'a_file', pairs).startswith(f'{inputs / "a_file"}: is a file, not a folder')
    assert message(people, inputs / 'nope.txt').startswith(f'{inputs / "nope.txt"}: no such pairs file')
    assert message(people, inputs / 'empty_pairs.txt').startswith(f'{inputs / "empty_pairs.txt"}: no pairs in the file')
    assert message(people, inputs / 'binary_pairs.txt').startswith(f'{inputs / "binary_pairs.txt"}: not a text file')
    assert message(inputs / 'empty', pairs).startswith(f'{inputs / "empty"}: none of the 2 pairs of {pairs} has its '
                                                       'images there')
    assert 'Someone_0002: no image file' in message(people, pairs, '--strict')
    assert message(people, pairs, '--json', inputs / 'empty').startswith(f'{inputs / "empty"}: is a folder')


def test_align_errors(inputs):
    def message(*argv):
        return run_cli(align_dataset_mtcnn, argv, 'align_dataset_mtcnn.py')
    assert message(inputs / 'nope', inputs / 'out1').startswith(f'{inputs / "nope"}: no such input folder')
    assert message(inputs / 'empty', inputs / 'out1').startswith(f'{inputs / "empty"}: no images in the input folder')
    assert message(inputs / 'people', inputs / 'a_file') == f'{inputs / "a_file"}: is a file, not a folder; give a ' \
                                                            'folder for the outputs'
    assert message(inputs / 'people', inputs / 'a_file' / 'sub').startswith(f'{inputs / "a_file" / "sub"}: '
                                                                            f'{inputs / "a_file"} is a file')
    assert not (inputs / 'out1').exists()


def test_freeze_graph_errors(inputs):
    assert run_cli(freeze_graph, [inputs / 'nope', inputs / 'x.pb'], 'freeze_graph.py').startswith(
        f'{inputs / "nope"}: no such file or directory')
    assert run_cli(freeze_graph, [inputs / 'garbage.pb', inputs / 'empty'], 'freeze_graph.py') == \
        f'{inputs / "empty"}: is a folder; give a file name for the output'


def test_classifier_errors(inputs, no_model):
    def message(*argv):
        return run_cli(classifier, argv, 'classifier.py')
    assert message('TRAIN', inputs / 'nope', 'm', inputs / 'c.pkl').startswith(f'{inputs / "nope"}: no such data folder')
    assert message('TRAIN', inputs / 'flat', 'm', inputs / 'c.pkl').startswith(f'{inputs / "flat"}: 1 images but no '
                                                                                'identity sub-folders')
    assert message('TRAIN', inputs / 'empty', 'm', inputs / 'c.pkl').startswith(f'{inputs / "empty"}: no images')
    assert message('TRAIN', inputs / 'people', 'm', inputs / 'empty').startswith(f'{inputs / "empty"}: is a folder')
    assert message('CLASSIFY', inputs / 'people', 'm', inputs / 'nope.pkl').startswith(
        f'{inputs / "nope.pkl"}: no such classifier file; train one with classifier.py TRAIN')
    assert message('CLASSIFY', inputs / 'people', 'm', inputs / 'garbage.pkl').startswith(
        f'{inputs / "garbage.pkl"}: not a classifier pickle')
    assert message('TRAIN', inputs / 'people', 'm', inputs / 'c.pkl', '--use_split_dataset').startswith(
        f'{inputs / "people"}: no identity has --min_nrof_images_per_class 20 images')


def test_generate_pairs_errors(inputs):
    assert run_cli(generate_pairs, [inputs / 'flat', inputs / 'p.txt'], 'generate_pairs.py').startswith(
        f'{inputs / "flat"}: 1 images but no identity sub-folders; put each person\'s images in a folder')


def test_debug_variable_shows_the_traceback(inputs, monkeypatch):
    monkeypatch.setenv(cli.DEBUG_VARIABLE, '1')
    with pytest.raises(cli.UserError, match='no such image file'):
        cli.run_script(compare.main, compare.parse_arguments, ['m', str(inputs / 'nope.jpg')], prog='compare.py')


def test_a_bug_in_a_tool_keeps_its_traceback(monkeypatch):
    """run_script turns user errors into one line, not every ValueError: a bug stays a traceback."""
    from facenet_tf2.commands import identify

    def broken(args):
        raise ValueError('boom')
    monkeypatch.setattr(identify, 'main', broken)
    monkeypatch.setattr(sys, 'argv', ['identify.py', 'info', 'index.npz'])
    with pytest.raises(ValueError, match='boom'):
        identify.cli()


def test_scripts_start_without_tensorflow_start_up_noise(frozen_model_pb):
    """No oneDNN/CUDA/absl lines before a script's output unless the user asks for them."""
    env = {key: value for key, value in os.environ.items() if key not in ('TF_CPP_MIN_LOG_LEVEL', 'FACENET_TF2_DEBUG')}
    command = [sys.executable, 'src/compare.py', str(frozen_model_pb), 'data/images/Anthony_Hopkins_0001.jpg',
               'data/images/Anthony_Hopkins_0002.jpg']
    quiet = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stderr == '', quiet.stderr
    assert quiet.stdout.startswith('Model filename: ') and 'Distance matrix' in quiet.stdout
    verbose = subprocess.run(command, cwd=REPO_ROOT, env={**env, 'TF_CPP_MIN_LOG_LEVEL': '0'}, capture_output=True,
                             text=True, timeout=600)
    assert verbose.returncode == 0 and 'oneDNN' in verbose.stderr  # asked for: TensorFlow's lines show
