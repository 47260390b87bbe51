"""Tools that expect aligned face crops warn when given anything else (raw photos are otherwise
embedded as centre crops of the whole picture)."""
import importlib.util

from PIL import Image

from facenet_tf2.crops import not_aligned_warning
from training_fixtures import REPO_ROOT

PEOPLE = ['Abel_Pacheco/Abel_Pacheco_0001', 'Abel_Pacheco/Abel_Pacheco_0004', 'Akhmed_Zakayev/Akhmed_Zakayev_0001',
          'Akhmed_Zakayev/Akhmed_Zakayev_0003']


def _photos(lfw_dir):
    return [str(lfw_dir / (name + '.jpg')) for name in PEOPLE]


def _crops(lfw_dir, folder, size=160):
    folder.mkdir(exist_ok=True)
    paths = []
    for path in _photos(lfw_dir):
        target = folder / path.rsplit('/', 1)[-1].replace('.jpg', '.png')
        Image.open(path).crop((45, 45, 205, 205)).resize((size, size)).save(target)
        paths.append(str(target))
    return paths


def test_the_warning_names_a_photo_its_size_and_the_aligner(lfw_dir, tmp_path):
    warning = not_aligned_warning(_photos(lfw_dir), 160, 'pass --is_aligned False')
    assert warning.startswith('Warning: 4 of 4 images checked are not 160x160 aligned face crops')
    assert 'Abel_Pacheco_0001.jpg is 250x250' in warning and 'align_dataset_mtcnn.py --image_size 160' in warning
    assert warning.endswith('or pass --is_aligned False') and '\n' not in warning
    crops = _crops(lfw_dir, tmp_path / 'crops')
    assert not_aligned_warning(crops, 160) is None
    assert not_aligned_warning(crops[:3] + [_photos(lfw_dir)[3]], 160).startswith('Warning: 1 of 4')
    assert not_aligned_warning(crops, 182).startswith('Warning: 4 of 4 images checked are not 182x182')


def test_clustering_warns_on_raw_photos_and_points_to_the_aligner(lfw_dir, frozen_model_pb, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location('clustering', REPO_ROOT / 'contributed' / 'clustering.py')
    clustering = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(clustering)
    (tmp_path / 'photos').mkdir()
    for path in _photos(lfw_dir):
        (tmp_path / 'photos' / path.rsplit('/', 1)[-1]).symlink_to(path)
    clustering.main(clustering.parse_arguments(['--model_dir', str(frozen_model_pb), '--input', str(tmp_path / 'photos'),
                                                '--output', str(tmp_path / 'out')]))
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith('Warning:')]
    assert len(warnings) == 1 and 'align_dataset_mtcnn.py' in warnings[0] and 'cluster.py' in warnings[0], warnings
