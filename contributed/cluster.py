"""Clusters similar faces from an input folder together in folders based on the euclidean distance matrix.

As the original contributed script (PXL University College, 2017): every face MTCNN finds with a
probability above 0.95 in the photos of data_dir is aligned (--margin, --image_size), embedded, and
DBSCAN (eps --cluster_threshold 1.0, min_samples --min_cluster_size 1) groups the faces by the
Euclidean distances of their embeddings. Each cluster i is saved as out_dir/i/1.png, 2.png, ...
(with --largest_cluster_only: the largest as out_dir/1.png, 2.png, ...).

    python contributed/cluster.py ~/models/20170512-110547 ~/photos/party ~/photos/party_clusters

Added: out_dir/clusters.csv lists every face (its file, the photo, the box, the probability and its
cluster, -1 for DBSCAN's noise); the distance matrix is printed only for up to 30 faces; the saved
thumbnails are the aligned crops (the original saved them prewhitened); files are written atomically;
unreadable photos are reported and skipped; --standardization fixed for 2018 models.
"""
import argparse
import csv
import io
import os

import numpy as np
from PIL import Image
from sklearn.cluster import DBSCAN
from sklearn.metrics.pairwise import euclidean_distances

import facenet
from facenet_tf2.commands.compare import distance_matrix_text
from facenet_tf2.arguments import add_standardization_argument, positive_int, resolve_standardization
from facenet_tf2.cli import run_script
from facenet_tf2.faces import create_detector, embed_crops, find_faces
from facenet_tf2.files import atomic_path, write_bytes_atomically
from facenet_tf2.errors import PathError
from facenet_tf2.images import read_image
from facenet_tf2.errors import ImageReadError

MIN_FACE_PROBABILITY = 0.95  # the original's
MAX_PRINTED_FACES = 30


def main(args):
    photos = facenet.get_image_paths(os.path.expanduser(args.data_dir))
    if not photos:
        raise PathError(args.data_dir, 'no images to cluster (expected a folder of photos)')
    networks = create_detector(args.gpu_memory_fraction)
    faces = photo_faces(photos, networks, args.margin, args.image_size)
    if not faces:
        raise PathError(args.data_dir, f'no face found in any of the {len(photos)} photos')
    model = facenet.load_model(os.path.expanduser(args.model))
    emb = embed_crops(model, [crop for _, _, crop, _, _ in faces],
                      resolve_standardization(args.standardization, args.model))
    matrix = euclidean_distances(emb)
    if len(emb) <= MAX_PRINTED_FACES:
        print('')
        print(distance_matrix_text(emb))
        print('')

    # DBSCAN needs no number of clusters.
    labels = DBSCAN(eps=args.cluster_threshold, min_samples=args.min_cluster_size, metric='precomputed').fit(matrix).labels_
    no_clusters = len(set(labels)) - (1 if -1 in labels else 0)
    print('No of clusters:', no_clusters)
    files = save_clusters(faces, labels, no_clusters, os.path.expanduser(args.out_dir), args.largest_cluster_only)
    write_faces_csv(os.path.join(os.path.expanduser(args.out_dir), 'clusters.csv'), faces, labels, files)
    return labels, faces


def photo_faces(photos, networks, margin, image_size):
    """(photo, face index, crop, box, probability) of every face above MIN_FACE_PROBABILITY."""
    faces = []
    for start in range(0, len(photos), 16):
        images = {}
        for photo in photos[start:start + 16]:
            try:
                images[photo] = read_image(photo)
            except ImageReadError as e:
                print(f'skipping {e}')
        found = find_faces(list(images.values()), networks, margin, image_size, MIN_FACE_PROBABILITY)
        for photo, photo_faces_found in zip(images, found):
            faces += [(photo, i, crop, box, probability) for i, (crop, box, probability) in enumerate(photo_faces_found)]
    return faces


def save_clusters(faces, labels, no_clusters, out_dir, largest_cluster_only):
    """Writes the thumbnails as the original named them; returns each face's file ('' if unsaved)."""
    files = [''] * len(faces)
    if no_clusters == 0:
        return files
    sizes = [int(np.sum(labels == i)) for i in range(no_clusters)]
    for i in range(no_clusters):
        print('Cluster {}: {}'.format(i, np.nonzero(labels == i)[0]))
    if largest_cluster_only:
        largest = int(np.argmax(sizes))
        print('Saving largest cluster (Cluster: {})'.format(largest))
        folders = {largest: out_dir}
    else:
        print('Saving all clusters')
        folders = {i: os.path.join(out_dir, str(i)) for i in range(no_clusters)}
    for cluster, folder in folders.items():
        for cnt, j in enumerate(np.nonzero(labels == cluster)[0], 1):
            files[j] = os.path.join(folder, f'{cnt}.png')
            with atomic_path(files[j]) as temporary:
                Image.fromarray(faces[j][2]).save(temporary, format='PNG')
    return files


def write_faces_csv(filename, faces, labels, files):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(['file', 'photo', 'face', 'x1', 'y1', 'x2', 'y2', 'probability', 'cluster'])
    for (photo, index, _, box, probability), label, file in zip(faces, labels, files):
        writer.writerow([file, photo, index, *[int(v) for v in box], '%.4f' % probability, int(label)])
    write_bytes_atomically(filename, out.getvalue().encode('utf-8'))


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('model', type=str,
                        help='Either a directory containing the meta_file and ckpt_file or a model protobuf (.pb) file '
                             '(or a SavedModel, .keras or .h5 model)')
    parser.add_argument('data_dir', type=str, help='The directory containing the images to cluster into folders.')
    parser.add_argument('out_dir', type=str, help='The output directory where the image clusters will be saved.')
    parser.add_argument('--image_size', type=positive_int, help='Image size (height, width) in pixels.', default=160)
    parser.add_argument('--margin', type=int,
                        help='Margin for the crop around the bounding box (height, width) in pixels.', default=44)
    parser.add_argument('--min_cluster_size', type=positive_int,
                        help='The minimum amount of pictures required for a cluster.', default=1)
    parser.add_argument('--cluster_threshold', type=float,
                        help='The minimum distance for faces to be in the same cluster', default=1.0)
    parser.add_argument('--largest_cluster_only', action='store_true',
                        help='This argument will make that only the biggest cluster is saved.')
    parser.add_argument('--gpu_memory_fraction', type=float,
                        help='Upper bound on the amount of GPU memory that will be used by the process.', default=1.0)
    add_standardization_argument(parser)
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
