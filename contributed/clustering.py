"""Face Cluster: groups the face images of a folder with the Chinese whispers graph algorithm.

As the original contributed script: the images of --input (aligned face thumbnails) are embedded with
--model_dir; faces whose embeddings have an inner product above 0.55 are linked by an edge weighted
with it, and 20 rounds of Chinese whispers (each face, in random order, joins the cluster with the
largest summed edge weight among its neighbours) find the clusters. The images are copied to
--output/0, 1, ... , largest cluster first.

    python contributed/clustering.py --model_dir ~/models/20170512-110547 --input ~/faces_160 --output ~/face_clusters

Fixed here: a face without any neighbour was dropped from the output (its cluster label became the
falsy 0); it is now a cluster of its own. Added: --threshold, --iterations and --seed (the order of
the rounds is seeded, so a run repeats), --is_aligned False to align photos on the fly, any model
format, clusters.csv in --output (image, cluster), copies written atomically; unreadable images and
photos without a face are reported and left out. No networkx needed.
"""
import argparse
import csv
import io
import os
import shutil

import numpy as np

import facenet
from facenet_tf2.arguments import add_face_image_arguments, positive_int
from facenet_tf2.cli import run_script
from facenet_tf2.faces import embed_image_files
from facenet_tf2.files import atomic_path, write_bytes_atomically
from facenet_tf2.errors import PathError


def main(args):
    image_paths = facenet.get_image_paths(os.path.expanduser(args.input))
    if len(image_paths) < 2:
        raise PathError(args.input, f'{len(image_paths)} image(s): clustering needs at least two face images')
    model = facenet.load_model(os.path.expanduser(args.model_dir))
    print('Runnning forward pass on images')
    embeddings, found = embed_image_files(model, image_paths, model.image_size or args.image_size, args.batch_size,
                                          args.is_aligned, args.margin)
    image_paths = list(np.asarray(image_paths)[found])
    if len(image_paths) < 2:
        raise PathError(args.input, f'{len(image_paths)} usable face image(s): clustering needs at least two')
    sorted_clusters = chinese_whispers(embeddings, args.threshold, args.iterations, np.random.default_rng(args.seed))
    rows = []
    output = os.path.expanduser(args.output)
    for idx, cluster in enumerate(sorted_clusters):
        cluster_dir = os.path.join(output, str(idx))
        for i in cluster:
            with atomic_path(os.path.join(cluster_dir, os.path.basename(image_paths[i]))) as temporary:
                shutil.copyfile(image_paths[i], temporary)
            rows.append((image_paths[i], idx))
    out = io.StringIO()
    csv.writer(out).writerows([('image', 'cluster'), *rows])
    write_bytes_atomically(os.path.join(output, 'clusters.csv'), out.getvalue().encode('utf-8'))
    print(f'{len(sorted_clusters)} clusters of {len(image_paths)} faces written to {args.output}')
    return sorted_clusters, image_paths


def chinese_whispers(embeddings, threshold=0.55, iterations=20, rng=None):
    """Clusters (lists of row indices, largest first) of the graph linking rows whose embeddings'
    inner product exceeds threshold, weighted by it."""
    rng = rng or np.random.default_rng()
    similarity = embeddings @ embeddings.T
    np.fill_diagonal(similarity, 0)
    weights = np.where(similarity > threshold, similarity, 0.0)
    cluster = np.arange(len(embeddings))
    for _ in range(iterations):
        for node in rng.permutation(len(embeddings)):
            neighbours = np.nonzero(weights[node])[0]
            if len(neighbours):
                totals = np.bincount(cluster[neighbours], weights=weights[node, neighbours])
                cluster[node] = int(np.argmax(totals))  # the first of equal sums, as the original's strict >
    members = [np.nonzero(cluster == label)[0].tolist() for label in np.unique(cluster)]
    return sorted(members, key=len, reverse=True)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--model_dir', type=str, required=True,
                        help='A model directory, a frozen .pb, a checkpoint folder, a SavedModel, .keras or .h5 file.')
    parser.add_argument('--batch_size', type=positive_int, help='batch size', default=30)
    parser.add_argument('--input', type=str, help='Input dir of images', required=True)
    parser.add_argument('--output', type=str, help='Output dir of clusters', required=True)
    parser.add_argument('--threshold', type=float, default=0.55,
                        help='Link two faces whose embeddings have an inner product above this.')
    parser.add_argument('--iterations', type=positive_int, default=20, help='Rounds of Chinese whispers.')
    parser.add_argument('--seed', type=int, default=0, help='Seed of the random order of the rounds.')
    add_face_image_arguments(parser, image_size_help='Image size when the model does not say (height, width) in pixels.')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
