import argparse
import subprocess

import pytest

import facenet
from conftest import REPO_ROOT

VGGFACE2 = REPO_ROOT / 'data' / 'learning_rate_schedule_classifier_vggface2.txt'


@pytest.mark.parametrize('epoch, rate', [(0, 0.05), (99, 0.05), (100, 0.005), (199, 0.005), (275, 0.0005)])
def test_schedule_rates(epoch, rate):
    assert facenet.get_learning_rate_from_file(str(VGGFACE2), epoch) == rate


@pytest.mark.parametrize('epoch', [276, 277, 10_000])
def test_schedule_end_is_a_stop_signal(epoch):
    lr = facenet.get_learning_rate_from_file(str(VGGFACE2), epoch)
    assert lr == facenet.LEARNING_RATE_STOP and lr <= 0


def test_schedule_without_negative_last_line_stops_there_too():
    casia = REPO_ROOT / 'data' / 'learning_rate_schedule_classifier_casia.txt'
    assert facenet.get_learning_rate_from_file(str(casia), 999) == 0.001
    assert facenet.get_learning_rate_from_file(str(casia), 1000) <= 0


def test_schedule_comments_dash_and_unsorted_lines(tmp_path):
    schedule = tmp_path / 'lr.txt'
    schedule.write_text('# header\n\n10: 0.01  # later\n0: 0.1\n20: -\n')
    assert facenet.read_learning_rate_schedule(str(schedule)) == [(0, 0.1), (10, 0.01), (20, -1.0)]
    assert facenet.get_learning_rate_from_file(str(schedule), 15) == 0.01


def test_schedule_errors_name_file_and_line(tmp_path):
    bad = tmp_path / 'bad.txt'
    bad.write_text('0: 0.1\nten: 0.01\n')
    with pytest.raises(ValueError, match=r'bad.txt:2'):
        facenet.get_learning_rate_from_file(str(bad), 0)
    late = tmp_path / 'late.txt'
    late.write_text('5: 0.1\n9: -1\n')
    with pytest.raises(ValueError, match='starts at epoch 5'):
        facenet.get_learning_rate_from_file(str(late), 0)


def test_write_arguments_to_file(tmp_path):
    args = argparse.Namespace(batch_size=90, optimizer='ADAM', random_flip=True)
    facenet.write_arguments_to_file(args, str(tmp_path / 'arguments.txt'))
    assert (tmp_path / 'arguments.txt').read_text() == 'batch_size: 90\noptimizer: ADAM\nrandom_flip: True\n'


def test_store_revision_info(tmp_path):
    facenet.store_revision_info(str(REPO_ROOT), str(tmp_path), 'train.py --x 1')
    text = (tmp_path / 'revision_info.txt').read_text()
    head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
    assert text.startswith('arguments: train.py --x 1\n')
    assert 'tensorflow version: 2.' in text
    if head:
        assert f'git hash: {head}' in text
    outside = tmp_path / 'not_git'
    outside.mkdir()
    facenet.store_revision_info(str(outside), str(tmp_path), 'x')  # no repository: recorded, not raised
    assert 'git hash: git rev-parse HEAD:' in (tmp_path / 'revision_info.txt').read_text()
