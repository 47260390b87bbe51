"""Identify people in photos against a gallery index: enrol, add, remove, search.

    # a gallery folder with one folder of photos per person -> an index file
    python src/identify.py enroll gallery.npz ~/datasets/my_people --model ~/models/20170512-110547
    python src/identify.py add gallery.npz ~/datasets/new_people          # embeds only images not yet enrolled
    python src/identify.py remove gallery.npz Tony_Blair
    python src/identify.py search gallery.npz photo.jpg more_photos/ --lfw_json lfw.json --report report.csv

The index records the model (see facenet_tf2.gallery): adding or searching with another model is
refused. A gallery can also be an embeddings file of export_embeddings.py or batch_represent.py
(`enroll gallery.npz embeddings.npy --model ...`, names from the label_strings.npy beside it).
Photos are aligned on the fly (the first face MTCNN finds, --margin); with --is_aligned True the
images are aligned thumbnails (align_dataset_mtcnn.py output). Search prints for each probe its
top --top_k identities with the Euclidean distance to their nearest image; with --threshold, or
the LFW threshold of a validate_on_lfw.py --json result (--lfw_json), a probe farther than the
threshold from everyone is `unknown`. --report writes every result as .json or .csv.
"""
import argparse
import csv
import io
import json
import os

import numpy as np

from facenet_tf2.model_io import load_model
from facenet_tf2.arguments import (add_face_image_arguments, add_standardization_argument, positive_int,
                                   resolve_standardization)
from facenet_tf2.cli import run_script
from facenet_tf2.dataset import get_image_paths
from facenet_tf2.faces import embed_image_files
from facenet_tf2.files import atomic_path
from facenet_tf2.errors import PathError
from facenet_tf2.gallery import (Gallery, ModelIdentity, embeddings_file_rows, folder_images, import_faiss,
                                 threshold_from_validation)


def main(args):
    return COMMANDS[args.command](args)


def enroll(args):
    names, paths, embeddings = gallery_rows(args.gallery, args.labels)
    model = load_model(os.path.expanduser(args.model))
    standardization = resolve_standardization(args.standardization, args.model)
    gallery = Gallery(ModelIdentity.of(model, args.image_size, standardization))
    added = add_rows(gallery, model, names, paths, embeddings, args)
    gallery.save(args.index)
    print(f'Enrolled {added} images of {len(gallery.identities)} people into {args.index}')
    return gallery


def add(args):
    gallery = Gallery.load(args.index)
    names, paths, embeddings = gallery_rows(args.gallery, args.labels)
    model = load_index_model(gallery, args)
    added = add_rows(gallery, model, names, paths, embeddings, args)
    gallery.save(args.index)
    print(f'Added {added} images; {args.index} holds {len(gallery)} images of {len(gallery.identities)} people')
    return gallery


def remove(args):
    gallery = Gallery.load(args.index)
    removed = gallery.remove(args.names)
    gallery.save(args.index)
    print(f'Removed {removed} images of {len(args.names)} people; {len(gallery.identities)} people left')
    return gallery


def info(args):
    gallery = Gallery.load(args.index)
    counts = np.bincount(gallery.labels, minlength=len(gallery.names))
    print(f'{args.index}: {len(gallery)} images of {len(gallery.identities)} people, model {gallery.model.describe()}, '
          f'{gallery.model.image_size}px {gallery.model.standardization} images')
    for name, count in zip(gallery.names, counts):
        print(f'  {name}: {count}')
    return gallery


def search(args):
    gallery = Gallery.load(args.index)
    if not len(gallery):
        raise PathError(args.index, 'the gallery is empty; add people with `identify.py add`')
    probes = probe_paths(args.probes)
    threshold = args.threshold
    if args.lfw_json:
        threshold, far = threshold_from_validation(args.lfw_json, args.operating_point)
        print(f'Threshold {threshold:.4f} (Euclidean) from {args.lfw_json}, per-pair false accept rate {far:.2e}')
    if args.backend == 'faiss':
        import_faiss()
    model = load_index_model(gallery, args)
    embeddings, found = embed_image_files(model, probes, gallery.model.image_size, args.batch_size, args.is_aligned,
                                          args.margin, gallery.model.standardization)
    if not found.any():
        what = probes[0] if len(probes) == 1 else f'none of the {len(probes)} probe images'
        raise PathError(what, 'no face found (or unreadable); use a photo showing a face'
                              + (', or --is_aligned True for aligned thumbnails' if not args.is_aligned else ''))
    results = dict(zip(np.asarray(probes)[found], gallery.search(embeddings, args.top_k, threshold, args.backend,
                                                                 args.nprobe)))
    for probe in probes:
        print(describe(probe, results.get(probe)))
    if args.report:
        write_report(args.report, probes, results)
        print(f'Report written to {args.report}')
    return results


def gallery_rows(gallery, labels_file):
    """(names, paths, embeddings or None) of a gallery folder or embeddings file, checked before any model runs."""
    gallery = os.path.abspath(os.path.expanduser(gallery))  # enrolled paths must not depend on the working directory
    if gallery.endswith('.npy'):
        return embeddings_file_rows(gallery, labels_file and os.path.expanduser(labels_file))
    return (*folder_images(gallery), None)


def add_rows(gallery, model, names, paths, embeddings, args):
    """Embeds the images not yet in the gallery (or takes the given embeddings) and adds them."""
    if embeddings is None:
        enrolled = set(gallery.paths)
        new = [i for i, path in enumerate(paths) if path not in enrolled]
        names, paths = [names[i] for i in new], [paths[i] for i in new]
        embeddings, found = embed_image_files(model, paths, gallery.model.image_size, args.batch_size,
                                              args.is_aligned, args.margin, gallery.model.standardization)
        names, paths = np.asarray(names)[found].tolist(), np.asarray(paths)[found].tolist()
    elif embeddings.shape[1] != gallery.model.embedding_size:
        raise PathError(args.gallery, f'holds {embeddings.shape[1]}-d embeddings, the model gives '
                                      f'{gallery.model.embedding_size}-d ones: they were made with another model')
    return gallery.add(names, paths, embeddings)


def load_index_model(gallery, args):
    """The model to embed with (--model, or the one the index was built with), checked against the index."""
    model = load_model(os.path.expanduser(args.model or gallery.model.source))
    gallery.check_model(ModelIdentity.of(model, gallery.model.image_size, gallery.model.standardization), args.index)
    return model


def probe_paths(probes):
    """The image files named, folders expanded to their images (recursively, sorted)."""
    paths = []
    for probe in probes:
        probe = os.path.expanduser(probe)
        if os.path.isdir(probe):
            found = [path for folder, _, _ in sorted(os.walk(probe)) for path in get_image_paths(folder)]
            if not found:
                raise PathError(probe, 'no images in the probe folder')
            paths += found
        elif os.path.isfile(probe):
            paths.append(probe)
        else:
            raise PathError(probe, 'no such probe image or folder')
    return paths


def describe(probe, result):
    if result is None:
        return f'{probe}: no face'
    ranked = ', '.join(f'{match.name} {match.distance:.4f}' for match in result.matches)
    verdict = result.identity if result.accepted else f'unknown (beyond {result.threshold:.4f})'
    return f'{probe}: {verdict}  [{ranked}]'


def write_report(filename, probes, results):
    """One record per probe (JSON) or one row per probe and rank (CSV); probes without a face have none."""
    records = []
    for probe in probes:
        result = results.get(probe)
        records.append({'probe': probe, 'face_found': result is not None,
                        'identity': result.identity if result else None,
                        'accepted': result.accepted if result else False,
                        'threshold': result.threshold if result else None,
                        'matches': [{'rank': rank, 'name': match.name, 'distance': match.distance,
                                     'gallery_image': match.image}
                                    for rank, match in enumerate(result.matches if result else (), 1)]})
    if filename.lower().endswith('.json'):
        text = json.dumps(records, indent=1)
    else:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(['probe', 'face_found', 'identity', 'rank', 'name', 'distance', 'gallery_image'])
        for record in records:
            for match in record['matches'] or [{}]:
                writer.writerow([record['probe'], record['face_found'], record['identity'] or '',
                                 match.get('rank', ''), match.get('name', ''),
                                 '%.6f' % match['distance'] if match else '', match.get('gallery_image', '')])
        text = out.getvalue()
    with atomic_path(filename) as temporary, open(temporary, 'w', encoding='utf-8', newline='') as f:
        f.write(text)


COMMANDS = {'enroll': enroll, 'add': add, 'remove': remove, 'info': info, 'search': search}


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    commands = parser.add_subparsers(dest='command', required=True)

    def embedding_options(command, model_required):
        # Adding and searching use the image size the index was built with.
        add_face_image_arguments(command, is_aligned=False,
                                 image_size_help='Image size (height, width) in pixels.' if model_required else None)
        command.add_argument('--model', type=str, required=model_required,
                             help='A model directory, a frozen .pb, a checkpoint folder, a SavedModel, .keras or .h5 '
                                  'file' + ('' if model_required else " (default: the index's model)"))
        command.add_argument('--batch_size', type=positive_int, default=100,
                             help='Number of images to process in a batch.')

    for name, text in (('enroll', 'build a new index from a gallery'), ('add', 'add the images of a gallery')):
        command = commands.add_parser(name, help=text)
        command.add_argument('index', type=str, help='The index file (.npz).')
        command.add_argument('gallery', type=str,
                             help='A folder with one folder of images per person, or an embeddings .npy of '
                                  'export_embeddings.py / batch_represent.py.')
        command.add_argument('--labels', type=str,
                             help='For an embeddings .npy: the names of its rows (default: label_strings.npy beside it).')
        embedding_options(command, model_required=name == 'enroll')
        if name == 'enroll':
            add_standardization_argument(command)
    command = commands.add_parser('remove', help='remove people from an index')
    command.add_argument('index', type=str, help='The index file (.npz).')
    command.add_argument('names', type=str, nargs='+', help='Names of the people to remove.')
    command = commands.add_parser('info', help='list the people of an index')
    command.add_argument('index', type=str, help='The index file (.npz).')

    command = commands.add_parser('search', help='identify the faces of probe images')
    command.add_argument('index', type=str, help='The index file (.npz).')
    command.add_argument('probes', type=str, nargs='+', help='Probe images, or folders of them.')
    embedding_options(command, model_required=False)
    command.add_argument('--top_k', type=positive_int, default=5, help='Number of identities to list per probe.')
    threshold = command.add_mutually_exclusive_group()
    threshold.add_argument('--threshold', type=float,
                           help='Euclidean distance beyond which a probe is an unknown person.')
    threshold.add_argument('--lfw_json', type=str,
                           help='Take the threshold from this validate_on_lfw.py --json result.')
    command.add_argument('--operating_point', choices=['accuracy', 'val'], default='accuracy',
                         help="With --lfw_json: the threshold of best accuracy or the one at VAL@FAR=1e-3.")
    command.add_argument('--backend', choices=['exact', 'faiss'], default='exact',
                         help='exact: one matrix product (default); faiss: a FAISS index (pip install faiss-cpu).')
    command.add_argument('--nprobe', type=positive_int,
                         help='FAISS IVF lists searched per probe (galleries of 50,000+ images; default nlist/16).')
    command.add_argument('--report', type=str, metavar='FILE', help='Write the results to FILE.json or FILE.csv.')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
