"""align_dataset_mtcnn.py and facenet_tf2.detection.aligner: fidelity to the original's outputs on a sample of LFW, the
CLI's outputs, bad files, resuming after a kill, worker processes, multiple faces."""
import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facenet_tf2.detection import aligner
from facenet_tf2.commands.align_dataset_mtcnn import main, parse_arguments
from images_fixtures import write_bad_and_odd_images

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / 'src' / 'align' / 'align_dataset_mtcnn.py'
GOOD = {'Aaron_Eckhart': ['Aaron_Eckhart_0001.jpg'], 'Serena_Williams': ['Serena_Williams_0001.jpg',
                                                                         'Serena_Williams_0003.jpg']}


def load_fidelity_check():
    spec = importlib.util.spec_from_file_location('check_align_fidelity',
                                                  REPO_ROOT / 'benchmarks' / 'check_align_fidelity.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_sample_of_lfw_matches_the_original(lfw_dir, reference_dir):
    fidelity = load_fidelity_check()
    reference = fidelity.read_reference(str(reference_dir))
    paths = fidelity.evenly_spaced(reference, 300, always=fidelity.no_face_images(reference))
    networks = aligner.FaceAligner(160, 32, False).networks
    figures = fidelity.compare(reference, fidelity.align_for_comparison(str(lfw_dir), paths, networks))
    assert figures['images'] == 301 and figures['with_face_reference'] == 300
    assert figures['face_set_differs'] == []
    assert figures['boxes_within_1px'] >= fidelity.BOXES_TARGET, figures['box_off']
    assert figures['crops_identical'] >= fidelity.CROPS_TARGET, figures['crop_differs']


def png_with_size(path, width, height):
    """A PNG whose header claims width x height (a decompression bomb for Pillow), body from a tiny image."""
    Image.new('L', (4, 4)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = 12  # the IHDR chunk's type starts after the 8-byte signature and the 4-byte length
    data[ihdr + 4:ihdr + 12] = width.to_bytes(4, 'big') + height.to_bytes(4, 'big')
    data[ihdr + 17:ihdr + 21] = zlib.crc32(bytes(data[ihdr:ihdr + 17])).to_bytes(4, 'big')
    path.write_bytes(bytes(data))


@pytest.fixture(scope='module')
def dataset(lfw_dir, tmp_path_factory):
    """LFW faces (as JPEG, grayscale PNG and RGBA PNG) and bad files, one folder per identity."""
    root = tmp_path_factory.mktemp('unaligned')
    for name, files in GOOD.items():
        (root / name).mkdir()
        for file in files:
            shutil.copy(lfw_dir / name / file, root / name / file)
    face = Image.open(lfw_dir / 'Serena_Williams' / 'Serena_Williams_0003.jpg')
    face.convert('L').save(root / 'Serena_Williams' / 'Serena_Williams_gray.png')
    face.convert('RGBA').save(root / 'Serena_Williams' / 'Serena_Williams_rgba.png')
    # Truncated, text, empty, and faceless noise images (RGB, RGBA, 8- and 16-bit gray), plus a bomb.
    write_bad_and_odd_images(root / 'Bad_Files')
    png_with_size(root / 'Bad_Files' / 'huge.png', 30000, 30000)
    (root / 'Empty_Identity').mkdir()
    return root


def read_boxes(output_dir):
    lines = []
    for path in sorted(Path(output_dir).glob('bounding_boxes_*.txt')):
        lines += path.read_text().splitlines()
    return {line.split(' ')[0]: [int(v) for v in line.split(' ')[1:]] for line in lines}


def run(argv):
    return main(parse_arguments([str(a) for a in argv]))


@pytest.fixture(scope='module')
def aligned(dataset, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp('aligned')
    return output_dir, run([dataset, output_dir, '--image_size', 160, '--margin', 32])


def test_outputs_match_the_original_and_bad_files_are_reported(aligned, dataset, reference_dir):
    output_dir, summary = aligned
    boxes = read_boxes(output_dir)
    assert len(boxes) == 9  # every image with an outcome has its line; the 4 that failed are retried next time
    pngs = sorted(str(p.relative_to(output_dir)) for p in output_dir.rglob('*.png'))
    assert pngs == ['Aaron_Eckhart/Aaron_Eckhart_0001.png', 'Serena_Williams/Serena_Williams_0001.png',
                    'Serena_Williams/Serena_Williams_0003.png', 'Serena_Williams/Serena_Williams_gray.png',
                    'Serena_Williams/Serena_Williams_rgba.png']
    assert not list(output_dir.rglob('.*'))  # no temporary files left
    assert (output_dir / 'Empty_Identity').is_dir() and (output_dir / 'revision_info.txt').is_file()
    reference = load_fidelity_check().read_reference(str(reference_dir))
    for name, files in GOOD.items():
        for file in files:
            png = output_dir / name / file.replace('.jpg', '.png')
            crop = np.asarray(Image.open(png).convert('RGB'))
            assert crop.shape == (160, 160, 3)
            assert boxes[str(png)] == reference[f'{name}/{file}'][0]
            assert hashlib.md5(crop.tobytes()).hexdigest() == reference[f'{name}/{file}'][1]
    # RGBA loses its alpha: the same crop as the RGB image.
    serena = output_dir / 'Serena_Williams'
    assert (serena / 'Serena_Williams_rgba.png').read_bytes() == (serena / 'Serena_Williams_0003.png').read_bytes()
    for faceless in ('good', 'gray', 'gray16', 'rgba'):
        assert boxes[str(output_dir / 'Bad_Files' / f'{faceless}.png')] == []
    for failed in ('empty', 'truncated', 'text', 'huge'):
        assert str(output_dir / 'Bad_Files' / f'{failed}.png') not in boxes
    assert summary.nrof_images_total == 13 and summary.nrof_images_aligned == 5 and summary.already_done == 0
    assert sorted(Path(p).name for p in summary.no_face) == ['good.png', 'gray.pgm', 'gray16.png', 'rgba.png']
    reasons = {Path(path).name: reason for path, reason in summary.errors}
    assert sorted(reasons) == ['empty.png', 'huge.png', 'text.jpg', 'truncated.jpg']
    assert 'empty' in reasons['empty.png'] and 'too large' in reasons['huge.png']
    assert '  unreadable or failed: 4 (not recorded: the next run retries them)' in summary.lines()


def test_a_second_run_retries_only_the_failed_images(aligned, dataset):
    output_dir, _ = aligned
    before = {p: p.stat().st_mtime_ns for p in output_dir.rglob('*.png')}
    summary = run([dataset, output_dir, '--image_size', 160, '--margin', 32])
    assert summary.already_done == 9 and summary.nrof_images_aligned == 0 and len(summary.errors) == 4
    assert not summary.no_face  # the faceless images are recorded as done
    assert {p: p.stat().st_mtime_ns for p in output_dir.rglob('*.png')} == before
    assert len(read_boxes(output_dir)) == 9


def test_a_fixed_file_is_aligned_by_the_next_run_and_retry_failed_redoes_faceless(lfw_dir, tmp_path):
    source = tmp_path / 'in' / 'Aaron_Eckhart'
    source.mkdir(parents=True)
    face = (lfw_dir / 'Aaron_Eckhart' / 'Aaron_Eckhart_0001.jpg').read_bytes()
    (source / 'face.jpg').write_bytes(face[:len(face) // 3])  # truncated: unreadable
    Image.new('RGB', (120, 120), (90, 90, 90)).save(source / 'blank.png')
    output_dir = tmp_path / 'out'
    first = run([tmp_path / 'in', output_dir, '--image_size', 160])
    assert len(first.errors) == 1 and len(first.no_face) == 1
    (source / 'face.jpg').write_bytes(face)
    second = run([tmp_path / 'in', output_dir, '--image_size', 160])
    assert second.nrof_images_aligned == 1 and second.already_done == 1 and not second.errors
    assert (output_dir / 'Aaron_Eckhart' / 'face.png').is_file()
    third = run([tmp_path / 'in', output_dir, '--image_size', 160, '--retry_failed'])
    assert third.already_done == 1 and [Path(p).name for p in third.no_face] == ['blank.png']


@pytest.mark.slow
def test_workers_split_the_work_and_give_the_same_outputs(aligned, dataset, tmp_path):
    output_dir, _ = aligned
    summary = run([dataset, tmp_path, '--image_size', 160, '--margin', 32, '--workers', 2])
    assert summary.nrof_images_aligned == 5 and len(summary.errors) == 4
    lines = [line for f in tmp_path.glob('bounding_boxes_*.txt') for line in f.read_text().splitlines()]
    assert len(lines) == 9 == len(set(lines))
    assert {p.replace(str(tmp_path), ''): b for p, b in read_boxes(tmp_path).items()} == \
        {p.replace(str(output_dir), ''): b for p, b in read_boxes(output_dir).items()}
    for png in output_dir.rglob('*.png'):
        assert (tmp_path / png.relative_to(output_dir)).read_bytes() == png.read_bytes()


@pytest.mark.slow
def test_a_killed_run_resumes_without_redoing_finished_images(lfw_dir, tmp_path):
    source = tmp_path / 'unaligned'
    people = sorted(os.listdir(lfw_dir))[:60]
    for person in people:
        (source / person).mkdir(parents=True)
        first = sorted(os.listdir(lfw_dir / person))[0]
        shutil.copy(lfw_dir / person / first, source / person / first)
    output_dir = tmp_path / 'aligned'
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    process = subprocess.Popen([sys.executable, str(SCRIPT), str(source), str(output_dir), '--image_size', '160',
                                '--margin', '32'], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list(output_dir.rglob('*.png'))) < 8:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    done_before = {str(p) for p in output_dir.rglob('*.png')}
    assert 8 <= len(done_before) < 60, 'the run was not killed mid-way'
    first_file = set(output_dir.glob('bounding_boxes_*.txt'))

    summary = run([source, output_dir, '--image_size', 160, '--margin', 32])
    assert summary.already_done == len(done_before)
    second_file, = set(output_dir.glob('bounding_boxes_*.txt')) - first_file
    redone = {line.split(' ')[0] for line in second_file.read_text().splitlines()}
    assert not redone & done_before
    assert len(list(output_dir.rglob('*.png'))) == 60
    for png in output_dir.rglob('*.png'):
        assert Image.open(png).size == (160, 160)  # complete files only (a partial PNG would not decode)
        Image.open(png).load()


def test_resume_trusts_pngs_and_no_face_lines_only(tmp_path):
    # A kill between an image's flushed line and its PNG's rename leaves a line without a PNG: redo it.
    for name in ('a.jpg', 'b.jpg', 'c.jpg', 'd e.jpg'):
        (tmp_path / 'in' / 'Person').mkdir(parents=True, exist_ok=True)
        (tmp_path / 'in' / 'Person' / name).write_bytes(b'')
    out = tmp_path / 'out' / 'Person'
    out.mkdir(parents=True)
    (out / 'a.png').write_bytes(b'done')
    (tmp_path / 'out' / 'bounding_boxes_00001.txt').write_text(
        f'{out / "b.png"} 1 2 30 40\n{out / "c.png"}\n{out / "d e.png"}\n')
    tasks, total = aligner.plan_tasks(str(tmp_path / 'in'), str(tmp_path / 'out'), False, False)
    assert total == 4 and [Path(t.image_path).name for t in tasks] == ['b.jpg']


def test_multiple_faces(lfw_dir, tmp_path):
    two = np.hstack([np.asarray(Image.open(lfw_dir / name / files[0])) for name, files in GOOD.items()])
    (tmp_path / 'in' / 'Pair').mkdir(parents=True)
    Image.fromarray(two).save(tmp_path / 'in' / 'Pair' / 'pair.png')
    run([tmp_path / 'in', tmp_path / 'multi', '--detect_multiple_faces', 'True'])
    assert sorted(p.name for p in (tmp_path / 'multi' / 'Pair').iterdir()) == ['pair_0.png', 'pair_1.png']
    boxes = read_boxes(tmp_path / 'multi')
    assert len(boxes) == 2 and all(len(b) == 4 for b in boxes.values())
    run([tmp_path / 'in', tmp_path / 'single', '--detect_multiple_faces', 'False'])
    assert [p.name for p in (tmp_path / 'single' / 'Pair').iterdir()] == ['pair.png']


def test_detect_multiple_faces_is_a_real_boolean():
    def parsed(*flag):
        return parse_arguments(['in', 'out', *flag]).detect_multiple_faces
    assert parsed() is False and parsed('--detect_multiple_faces') is True
    assert parsed('--detect_multiple_faces', 'False') is False and parsed('--detect_multiple_faces', '0') is False
    assert parsed('--detect_multiple_faces', 'True') is True
    with pytest.raises(SystemExit):
        parsed('--detect_multiple_faces', 'maybe')
    args = parse_arguments(['in', 'out'])
    assert (args.image_size, args.margin, args.gpu_memory_fraction, args.workers) == (182, 44, 1.0, 1)


def test_select_faces_prefers_large_central_faces():
    # 200x100 image (h=100, w=200), centre (100, 50). The big box is far off-centre: 2500 - 2 * 80^2 < 0.
    boxes = np.array([[160.0, 25.0, 210.0, 75.0, 0.99], [85.0, 35.0, 115.0, 65.0, 0.9]])
    np.testing.assert_array_equal(aligner.select_faces(boxes, (100, 200, 3), False)[0], boxes[1, 0:4])
    assert len(aligner.select_faces(boxes, (100, 200, 3), True)) == 2
    assert aligner.select_faces(np.empty((0, 5)), (100, 200, 3), False) == []


def test_crop_box_truncates_and_clips():
    np.testing.assert_array_equal(aligner.crop_box(np.array([10.7, -3.2, 150.9, 99.5]), 32, (100, 140)),
                                  [0, 0, 140, 100])
    np.testing.assert_array_equal(aligner.crop_box(np.array([40.7, 30.2, 80.9, 70.5]), 32, (100, 140)),
                                  [24, 14, 96, 86])
