"""The contributed tools and identify.py end to end on real LFW faces with the shared 20170512-110547
model: six LFW identities with at least 10 images (their first 10 each) and 40 people with a single
image (the unknowns), aligned once as align_dataset_mtcnn.py --image_size 160 --margin 32 would and
embedded once for the whole module; the scripts run through their main()/cli() functions."""
import csv
import importlib.util
import json
import os
import pickle
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from sklearn.linear_model import LogisticRegression

from facenet_tf2.commands import classifier
import facenet
from facenet_tf2.commands import identify
import lfw
from facenet_tf2.detection.aligner import align_dataset
from conftest import REPO_ROOT
from facenet_tf2.faces import embed_image_files
from facenet_tf2.gallery import (Gallery, ModelIdentity, predicted_rejection_rate, threshold_from_validation)

KNOWN = ['Arnold_Schwarzenegger', 'David_Beckham', 'Gerhard_Schroeder', 'Hans_Blix', 'Luiz_Inacio_Lula_da_Silva',
         'Wen_Jiabao']
IMAGES_PER_PERSON = 10
GALLERY_IMAGES_PER_PERSON = 5
NROF_UNKNOWN = 40


def _contributed(name):
    spec = importlib.util.spec_from_file_location(f'contributed_{name}', REPO_ROOT / 'contributed' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _identity(path):
    """The LFW identity of Name_0001.jpg / Name_0001.png."""
    return os.path.basename(str(path)).rsplit('_', 1)[0]


def _link(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        (folder / file.name).symlink_to(file)
    return folder


def _run_cli(module, argv, monkeypatch):
    """The one-line error a script's cli() exits with."""
    monkeypatch.setattr(sys, 'argv', [module.__file__, *argv])  # the script's own name starts the error line
    with pytest.raises(SystemExit) as exit_info:
        module.cli()
    message = str(exit_info.value.code)
    assert '\n' not in message and 'Traceback' not in message, message
    return message


@pytest.fixture(scope='module')
def load_each_model_once():
    """The scripts each load the model; loading and tracing it once keeps the module fast."""
    cache = {}
    original = facenet.load_model

    def cached(model, *args, **kwargs):
        key = (os.path.realpath(str(model)), args, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = original(model, *args, **kwargs)
        return cache[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(facenet, 'load_model', cached)
        yield


@pytest.fixture(scope='module')
def subset(tmp_path_factory, lfw_dir):
    """The photos (per identity, and all in one folder) and their aligned thumbnails."""
    base = tmp_path_factory.mktemp('lfw_subset')
    photos = {name: sorted((lfw_dir / name).glob('*.jpg'))[:IMAGES_PER_PERSON] for name in KNOWN}
    singles = [name for name in sorted(os.listdir(lfw_dir)) if len(os.listdir(lfw_dir / name)) == 1][:NROF_UNKNOWN]
    for name, files in photos.items():
        _link(base / 'raw' / name, files)
    for name in singles:
        _link(base / 'unknown_raw' / name, sorted((lfw_dir / name).glob('*.jpg')))
    for folder in ('raw', 'unknown_raw'):
        summary = align_dataset(str(base / folder), str(base / folder.replace('raw', 'aligned')), image_size=160,
                                margin=32, progress=False)
        assert summary.nrof_images_aligned == summary.nrof_images_total, summary.lines()
    aligned = base / 'aligned'
    gallery, probes = base / 'gallery', base / 'probes'
    for name in KNOWN:
        files = sorted((aligned / name).glob('*.png'))
        _link(gallery / name, files[:GALLERY_IMAGES_PER_PERSON])
        _link(probes / name, files[GALLERY_IMAGES_PER_PERSON:])
    flat_photos = _link(base / 'flat_photos', [file for files in photos.values() for file in files])
    flat_aligned = _link(base / 'flat_aligned', sorted(aligned.glob('*/*.png')))
    return SimpleNamespace(base=base, photos=photos, aligned=aligned, unknown=base / 'unknown_aligned',
                           gallery=gallery, probes=probes, flat_photos=flat_photos, flat_aligned=flat_aligned)


@pytest.fixture(scope='module')
def embedded(load_each_model_once, subset, frozen_model_pb):
    """One embedding pass over the aligned known and unknown faces."""
    model = facenet.load_model(str(frozen_model_pb))
    paths = sorted(str(p) for p in subset.aligned.glob('*/*.png'))
    unknown_paths = sorted(str(p) for p in subset.unknown.glob('*/*.png'))
    embeddings, found = embed_image_files(model, paths + unknown_paths, 160, 100)
    assert found.all()
    return SimpleNamespace(model=model, paths=paths, embeddings=embeddings[:len(paths)],
                           unknown_paths=unknown_paths, unknown_embeddings=embeddings[len(paths):])


@pytest.fixture(scope='module')
def lfw_json(reference_dir, tmp_path_factory):
    """A validate_on_lfw.py --json result of the model on LFW, computed from the original's LFW
    embeddings (the full LFW forward pass would take minutes)."""
    reference = np.load(reference_dir / 'original_embeddings_20170512-110547_lfw.npz')
    result = lfw.evaluate_embeddings(reference['embeddings'].astype(np.float64), reference['issame'])
    filename = tmp_path_factory.mktemp('lfw') / 'lfw.json'
    filename.write_text(json.dumps({'arguments': {'use_flipped_images': False}, **result.to_dict()}))
    return filename


@pytest.fixture(scope='module')
def trained(subset, frozen_model_pb, load_each_model_once, tmp_path_factory):
    pkl = tmp_path_factory.mktemp('clf') / 'classifier.pkl'
    classifier.main(classifier.parse_arguments(['TRAIN', str(subset.aligned), str(frozen_model_pb), str(pkl),
                                                '--use_split_dataset', '--min_nrof_images_per_class', '10',
                                                '--nrof_train_images_per_class', '5']))
    return pkl


@pytest.fixture(scope='module')
def index(subset, frozen_model_pb, load_each_model_once, tmp_path_factory):
    filename = tmp_path_factory.mktemp('index') / 'gallery.npz'
    identify.main(identify.parse_arguments(['enroll', str(filename), str(subset.gallery), '--model',
                                            str(frozen_model_pb), '--is_aligned', 'True']))
    return filename


def test_classifier_on_an_lfw_split(subset, frozen_model_pb, trained, capsys):
    accuracy = classifier.main(classifier.parse_arguments(['CLASSIFY', str(subset.aligned), str(frozen_model_pb),
                                                           str(trained), '--use_split_dataset',
                                                           '--min_nrof_images_per_class', '10',
                                                           '--nrof_train_images_per_class', '5']))
    assert 'Number of images: 30' in capsys.readouterr().out
    with capsys.disabled():
        print(f'\nFIGURE classifier.py CLASSIFY accuracy on 30 held-out images of 6 people: {accuracy:.3f}')
    assert accuracy > 0.95


def test_predict_names_the_people_in_photos(subset, frozen_model_pb, trained):
    predict = _contributed('predict')
    photos = [str(files[-1]) for files in subset.photos.values()]  # in the classifier's test half or not: any photo
    people = predict.main(predict.parse_arguments([*photos, str(frozen_model_pb), str(trained)]))
    main_names = [max(people[photo], key=lambda person: person[1])[0] for photo in photos]
    assert sum(name == person.replace('_', ' ') for name, person in zip(main_names, KNOWN)) >= 5


def test_cluster_dbscan_groups_photos_by_person(subset, frozen_model_pb, load_each_model_once, tmp_path):
    """With the crops of the module's alignment (margin 32, as for the LFW figures). At the original's
    default --margin 44 the single-link chaining of eps 1.0 merges two of these people (ARI 0.72)."""
    cluster = _contributed('cluster')
    labels, faces = cluster.main(cluster.parse_arguments([str(frozen_model_pb), str(subset.flat_photos),
                                                          str(tmp_path), '--margin', '32']))
    truth = [_identity(photo) for photo, *_ in faces]
    ari = adjusted_rand_score(truth, labels)
    print(f'\nFIGURE cluster.py adjusted Rand index, {len(faces)} faces in 60 photos: {ari:.3f}')
    assert ari > 0.8, ari
    with open(tmp_path / 'clusters.csv') as f:
        rows = list(csv.DictReader(f))
    assert [int(row['cluster']) for row in rows] == list(labels)
    assert all(os.path.isfile(row['file']) for row in rows if row['cluster'] != '-1')
    assert len(list(tmp_path.glob('*/*.png'))) == int(np.sum(labels >= 0))


def test_clustering_chinese_whispers_groups_faces_by_person(subset, frozen_model_pb, load_each_model_once,
                                                             tmp_path, capsys):
    clustering = _contributed('clustering')
    clustering.main(clustering.parse_arguments(['--model_dir', str(frozen_model_pb), '--input',
                                                str(subset.flat_aligned), '--output', str(tmp_path)]))
    assert 'aligned face crops' not in capsys.readouterr().err  # aligned 160 px crops: no warning
    copies = sorted(tmp_path.glob('*/*.png'))
    assert len(copies) == len(KNOWN) * IMAGES_PER_PERSON  # every face, the isolated ones too
    ari = adjusted_rand_score([_identity(p) for p in copies], [p.parent.name for p in copies])
    print(f'\nFIGURE clustering.py adjusted Rand index, 60 faces: {ari:.3f}')
    assert ari > 0.8, ari


def test_identify_top1_and_rejection_of_unknown_people(subset, embedded, index, lfw_json, tmp_path, capsys):
    report = tmp_path / 'report.json'
    identify.main(identify.parse_arguments(['search', str(index), str(subset.probes), str(subset.unknown),
                                            '--is_aligned', 'True', '--lfw_json', str(lfw_json),
                                            '--report', str(report)]))
    records = json.loads(report.read_text())
    known = [r for r in records if _identity(r['probe']) in KNOWN]
    unknown = [r for r in records if _identity(r['probe']) not in KNOWN]
    assert len(known) == len(KNOWN) * (IMAGES_PER_PERSON - GALLERY_IMAGES_PER_PERSON) and len(unknown) == NROF_UNKNOWN
    top1 = np.mean([r['matches'][0]['name'] == _identity(r['probe']) for r in known])
    assert top1 >= 0.95
    accepted_right = np.mean([r['identity'] == _identity(r['probe']) for r in known])
    assert accepted_right >= 0.9  # accepted and right
    assert all(len(r['matches']) == 5 and r['matches'][0]['distance'] <= r['matches'][1]['distance'] for r in records)

    # A probe of someone outside the gallery is rejected when no gallery face is within the threshold:
    # with the ROC's per-pair false accept rate, (1 - FAR)^n for n independent comparisons, between the
    # gallery's images (30, a lower bound) and its identities (6). Allow two binomial standard deviations.
    _, far = threshold_from_validation(lfw_json)
    low = predicted_rejection_rate(far, len(KNOWN) * GALLERY_IMAGES_PER_PERSON)
    high = predicted_rejection_rate(far, len(KNOWN))
    rejected = np.mean([not r['accepted'] for r in unknown])
    slack = 2 * np.sqrt(low * (1 - low) / NROF_UNKNOWN)
    with capsys.disabled():
        print(f'\nFIGURE identify.py top-1 {top1:.3f} of {len(known)} probes; unknown people rejected {rejected:.3f} of '
              f'{len(unknown)} (ROC predicts {low:.3f} to {high:.3f} at FAR {far:.4f}); known probes accepted and '
              f'right {accepted_right:.3f}')
    assert low - slack <= rejected <= min(1.0, high + slack), (rejected, low, high)
    out = capsys.readouterr().out
    assert 'unknown (beyond 1.1' in out


def test_identify_report_matches_the_embeddings(subset, embedded, index):
    """The index's exact search equals distances computed directly from the module's embeddings."""
    gallery = Gallery.load(index)
    probe = embedded.paths.index(str(subset.aligned / 'Hans_Blix' / sorted(os.listdir(subset.probes / 'Hans_Blix'))[0]))
    result = gallery.search(embedded.embeddings[probe:probe + 1], k=6)[0]
    gallery_rows = [embedded.paths.index(str(subset.aligned / _identity(p) / os.path.basename(p)))
                    for p in gallery.paths]
    distances = np.linalg.norm(embedded.embeddings[gallery_rows] - embedded.embeddings[probe], axis=1)
    for match in result.matches:
        own = [d for d, p in zip(distances, gallery.paths) if _identity(p) == match.name]
        assert abs(match.distance - min(own)) < 1e-4
    assert result.matches[0].name == 'Hans_Blix'


def test_identify_adds_and_removes_people_without_reembedding(subset, frozen_model_pb, index, tmp_path, monkeypatch,
                                                              capsys):
    filename = tmp_path / 'grown.npz'
    filename.write_bytes(index.read_bytes())
    identify.main(identify.parse_arguments(['remove', str(filename), 'Hans_Blix']))
    embedded_counts = []
    original = identify.embed_image_files

    def counting(model, paths, *args):
        embedded_counts.append(len(paths))
        return original(model, paths, *args)

    monkeypatch.setattr(identify, 'embed_image_files', counting)
    identify.main(identify.parse_arguments(['add', str(filename), str(subset.gallery), '--is_aligned', 'True']))
    assert embedded_counts == [GALLERY_IMAGES_PER_PERSON]  # only Hans Blix's images were embedded again
    gallery = Gallery.load(filename)
    assert sorted(gallery.identities) == sorted(KNOWN) and len(gallery) == len(KNOWN) * GALLERY_IMAGES_PER_PERSON
    identify.main(identify.parse_arguments(['remove', str(filename), 'Hans_Blix', 'Wen_Jiabao']))
    gallery = Gallery.load(filename)
    assert sorted(gallery.identities) == sorted(set(KNOWN) - {'Hans_Blix', 'Wen_Jiabao'})
    assert len(gallery) == (len(KNOWN) - 2) * GALLERY_IMAGES_PER_PERSON
    results = identify.main(identify.parse_arguments(['search', str(filename), str(subset.probes / 'Hans_Blix'),
                                                      '--is_aligned', 'True', '--threshold', '1.1']))
    assert all(result.matches[0].name != 'Hans_Blix' for result in results.values())
    assert 'Hans_Blix' not in capsys.readouterr().out.split('[')[-1]


def test_identify_enrolls_batch_represent_signatures(subset, frozen_model_pb, embedded, index, tmp_path):
    batch_represent = _contributed('batch_represent')
    labels, signatures, names = batch_represent.main(batch_represent.parse_arguments(
        ['-d', str(subset.gallery), '-o', str(tmp_path / 'out'), '--trained_model_dir', str(frozen_model_pb)]))
    assert np.load(tmp_path / 'out' / 'gallery.npy').tolist() == np.repeat(np.arange(len(KNOWN)), 5).tolist()
    assert np.load(tmp_path / 'out' / 'signatures.npy').shape == (len(KNOWN) * GALLERY_IMAGES_PER_PERSON, 128)
    from_file = tmp_path / 'from_signatures.npz'
    identify.main(identify.parse_arguments(['enroll', str(from_file), str(tmp_path / 'out' / 'signatures.npy'),
                                            '--model', str(frozen_model_pb)]))
    probes = embedded.embeddings[::3]
    for a, b in zip(Gallery.load(from_file).search(probes, 3), Gallery.load(index).search(probes, 3)):
        assert [m.name for m in a.matches] == [m.name for m in b.matches]
        assert np.allclose([m.distance for m in a.matches], [m.distance for m in b.matches], atol=1e-5)


def test_faiss_search_agrees_with_exact_search(embedded, index):
    pytest.importorskip('faiss', reason='faiss-cpu is an optional extra (pip install faiss-cpu)')
    gallery = Gallery.load(index)
    probes = np.concatenate([embedded.embeddings, embedded.unknown_embeddings])
    for exact, approximate in zip(gallery.search(probes, 5), gallery.search(probes, 5, backend='faiss')):
        assert [m.name for m in exact.matches] == [m.name for m in approximate.matches]
        assert np.allclose([m.distance for m in exact.matches], [m.distance for m in approximate.matches], atol=1e-5)


def test_faiss_ivf_index_on_a_large_synthetic_gallery():
    """From 50,000 images the FAISS index is an IVF one: approximate, but it finds the nearest
    identity for (nearly) every probe of a clustered synthetic gallery."""
    pytest.importorskip('faiss', reason='faiss-cpu is an optional extra (pip install faiss-cpu)')
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(60_000, 128)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    gallery = Gallery(ModelIdentity('synthetic', 128, 160, 'prewhiten', np.zeros(128, np.float32)))
    gallery.add([f'p{i}' for i in range(len(centres))], [f'{i}.png' for i in range(len(centres))], centres)
    targets = rng.choice(len(centres), 200, replace=False)
    probes = centres[targets] + rng.normal(scale=0.03, size=(200, 128)).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    found = [r.matches[0].name for r in gallery.search(probes, 1, backend='faiss')]
    assert type(gallery._searcher.index).__name__ == 'IndexIVFFlat'  # pylint: disable=protected-access
    assert np.mean([name == f'p{t}' for name, t in zip(found, targets)]) >= 0.95


def test_video_tool_writes_an_annotated_video_with_the_right_names(subset, frozen_model_pb, trained,
                                                                   load_each_model_once, tmp_path):
    """A 250x250 MJPG video of one photo per person, three frames each, recognised every third frame."""
    video = tmp_path / 'people.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 5.0, (250, 250))
    expected = []
    for name, files in subset.photos.items():
        frame = cv2.imread(str(files[-1]))
        for _ in range(3):
            writer.write(frame)
            expected.append(name.replace('_', ' '))
    writer.release()
    realtime = _contributed('real_time_face_recognition')
    output, log_file = tmp_path / 'annotated.avi', tmp_path / 'faces.csv'
    realtime.main(realtime.parse_arguments(['--input', str(video), '--output', str(output), '--no_display',
                                            '--log', str(log_file), '--model', str(frozen_model_pb),
                                            '--classifier_model', str(trained)]))
    with open(log_file) as f:
        rows = list(csv.DictReader(f))
    named = {}
    for row in rows:  # the largest face of each frame
        area = (int(row['x2']) - int(row['x1'])) * (int(row['y2']) - int(row['y1']))
        if area > named.get(int(row['frame']), ('', -1))[1]:
            named[int(row['frame'])] = (row['name'], area)
    assert sorted(named) == list(range(len(expected)))
    assert sum(named[i][0] == name for i, name in enumerate(expected)) >= len(expected) - 3
    capture = cv2.VideoCapture(str(output))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == len(expected) and frames[0].shape == (250, 250, 3)
    # The overlays are pure green boxes and text: far more green pixels than in the photo.
    green = lambda image: np.sum((image[:, :, 1] > 200) & (image[:, :, 0] < 80) & (image[:, :, 2] < 80))
    assert green(frames[0]) > green(cv2.imread(str(subset.photos[KNOWN[0]][-1]))) + 300


def test_visualize_embeddings_draws_pca_and_tsne_maps(subset, frozen_model_pb, load_each_model_once, tmp_path,
                                                     capsys):
    visualize = _contributed('visualize_embeddings')
    png = tmp_path / 'map.png'
    _, scores = visualize.main(visualize.parse_arguments([str(frozen_model_pb), str(subset.aligned), str(png),
                                                          '--thumbnails']))
    assert scores['embeddings'] == 1.0 and scores['t-SNE'] >= 0.9
    image = cv2.imread(str(png))
    assert image.shape[0] >= 600 and image.shape[1] >= 1200
    assert 'nearest-neighbour accuracy (t-SNE)' in capsys.readouterr().out


# Bad input: one line naming the problem, before the slow work where it can be known then.

def test_classifier_pickle_of_the_wrong_type(subset, frozen_model_pb, tmp_path, monkeypatch):
    pkl = tmp_path / 'not_a_classifier.pkl'
    pkl.write_bytes(pickle.dumps({'weights': [1, 2, 3]}))
    monkeypatch.setattr(facenet, 'load_model', lambda *a, **k: pytest.fail('loaded the model for a bad pickle'))
    message = _run_cli(classifier, ['CLASSIFY', str(subset.aligned), str(frozen_model_pb), str(pkl)], monkeypatch)
    assert message.startswith('classifier.py: ') and 'not the (classifier, class names)' in message
    predict = _contributed('predict')
    message = _run_cli(predict, [str(subset.photos[KNOWN[0]][0]), str(frozen_model_pb), str(pkl)], monkeypatch)
    assert message.startswith('predict.py: ') and str(pkl) in message


def test_classifier_pickle_of_another_model(subset, frozen_model_pb, load_each_model_once, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    svm = LogisticRegression().fit(rng.normal(size=(20, 512)), np.arange(20) % 2)
    pkl = tmp_path / 'other_model.pkl'
    pkl.write_bytes(pickle.dumps((svm, ['a', 'b'])))
    message = _run_cli(classifier, ['CLASSIFY', str(subset.aligned), str(frozen_model_pb), str(pkl)], monkeypatch)
    assert message.startswith('classifier.py: ') and 'trained on 512-d embeddings' in message
    assert 'gives 128-d' in message


def test_index_built_with_another_model(subset, frozen_model_pb, embedded, index, tmp_path, monkeypatch):
    gallery = Gallery.load(index)
    other = Gallery(ModelIdentity('models/other', 128, 160, 'prewhiten', np.roll(gallery.model.fingerprint, 1)),
                    gallery.names, gallery.labels, gallery.paths, gallery.embeddings)
    other.save(tmp_path / 'other.npz')
    probe = str(subset.probes / 'Hans_Blix')
    message = _run_cli(identify, ['search', str(tmp_path / 'other.npz'), probe, '--model', str(frozen_model_pb),
                                  '--is_aligned', 'True'], monkeypatch)
    assert message.startswith('identify.py: ') and 'not the model the index was built with' in message
    wide = Gallery(ModelIdentity('models/wide', 512, 160, 'prewhiten', np.zeros(512, np.float32)))
    wide.save(tmp_path / 'wide.npz')
    message = _run_cli(identify, ['add', str(tmp_path / 'wide.npz'), str(subset.gallery), '--model',
                                  str(frozen_model_pb)], monkeypatch)
    assert 'gives 128-d embeddings, the index holds 512-d ones' in message
    (tmp_path / 'garbage.npz').write_bytes(b'not an index')
    message = _run_cli(identify, ['search', str(tmp_path / 'garbage.npz'), probe], monkeypatch)
    assert 'not a gallery index' in message


def test_empty_gallery(tmp_path, frozen_model_pb, monkeypatch):
    (tmp_path / 'people' / 'nobody').mkdir(parents=True)
    monkeypatch.setattr(facenet, 'load_model', lambda *a, **k: pytest.fail('loaded the model for an empty gallery'))
    message = _run_cli(identify, ['enroll', str(tmp_path / 'g.npz'), str(tmp_path / 'people'), '--model',
                                  str(frozen_model_pb)], monkeypatch)
    assert message.startswith('identify.py: ') and 'the gallery is empty' in message
    Gallery(ModelIdentity('m', 128, 160, 'prewhiten', np.zeros(128, np.float32))).save(tmp_path / 'empty.npz')
    (tmp_path / 'probe.png').write_bytes(b'')
    message = _run_cli(identify, ['search', str(tmp_path / 'empty.npz'), str(tmp_path / 'probe.png')], monkeypatch)
    assert 'the gallery is empty' in message


def test_probe_without_a_face(index, load_each_model_once, tmp_path, monkeypatch):
    probe = tmp_path / 'wall.png'
    cv2.imwrite(str(probe), np.full((200, 200, 3), 128, np.uint8))
    message = _run_cli(identify, ['search', str(index), str(probe)], monkeypatch)
    assert message.startswith('identify.py: ') and str(probe) in message and 'no face found' in message


def test_unreadable_video(tmp_path, frozen_model_pb, trained, monkeypatch):
    realtime = _contributed('real_time_face_recognition')
    broken = tmp_path / 'broken.avi'
    broken.write_text('not a video')
    monkeypatch.setattr(facenet, 'load_model', lambda *a, **k: pytest.fail('loaded the model for a bad video'))
    message = _run_cli(realtime, ['--input', str(broken), '--no_display', '--model', str(frozen_model_pb),
                                  '--classifier_model', str(trained)], monkeypatch)
    assert message.startswith('real_time_face_recognition.py: ') and 'cannot read the video' in message
    message = _run_cli(realtime, ['--input', str(tmp_path / 'missing.avi'), '--no_display'], monkeypatch)
    assert 'no such video file' in message


def test_faiss_requested_without_faiss(index, monkeypatch):
    monkeypatch.setitem(sys.modules, 'faiss', None)  # import faiss raises ImportError
    message = _run_cli(identify, ['search', str(index), str(index), '--backend', 'faiss'], monkeypatch)
    assert message.startswith('identify.py: ') and 'pip install faiss-cpu' in message
