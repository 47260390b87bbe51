"""Draws a 2-D map of face embeddings coloured by identity (PCA and t-SNE), saved as a PNG.

Each point is one image; points of one person share a colour. A model that separates people well
shows tight, well separated groups, in the t-SNE map (which keeps neighbourhoods) at least; PCA's
linear projection shows how much of that lies in the two main directions. Input: a folder with one
folder of images per person (aligned thumbnails, or photos with --is_aligned False), or an
embeddings .npy of export_embeddings.py / batch_represent.py with the label_strings.npy beside it.

    python contributed/visualize_embeddings.py ~/models/20170512-110547 ~/datasets/lfw_160 map.png \\
        --max_identities 20 --thumbnails
    python contributed/visualize_embeddings.py ~/models/20170512-110547 embeddings.npy map.png

It prints the leave-one-out nearest-neighbour accuracy of the embeddings and of each 2-D map (how
often an image's nearest other image is of the same person), a number to go with the picture.
--thumbnails draws each image at its point (folder input only).
"""
import argparse
import os

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

import facenet
from facenet_tf2.arguments import (add_face_image_arguments, add_standardization_argument, positive_int,
                                   resolve_standardization)
from facenet_tf2.cli import run_script
from facenet_tf2.faces import embed_image_files
from facenet_tf2.files import atomic_path
from facenet_tf2.errors import PathError
from facenet_tf2.gallery import embeddings_file_rows, folder_images
from facenet_tf2.images import read_image
from facenet_tf2.errors import ImageReadError

SMALL_MAP = 10_000  # points


def main(args):
    source = os.path.expanduser(args.data)
    if source.endswith('.npy'):
        if args.thumbnails:
            raise PathError(args.data, '--thumbnails needs the images: give the image folder, not embeddings')
        names, paths, embeddings = embeddings_file_rows(source, args.labels and os.path.expanduser(args.labels))
        names, paths, embeddings = limit_identities(names, paths, embeddings, args.max_identities,
                                                    args.max_images_per_identity)
    else:
        names, paths = folder_images(source)
        names, paths, _ = limit_identities(names, paths, None, args.max_identities, args.max_images_per_identity)
        model = facenet.load_model(os.path.expanduser(args.model))
        embeddings, found = embed_image_files(model, paths, model.image_size or args.image_size, args.batch_size,
                                              args.is_aligned, args.margin,
                                              resolve_standardization(args.standardization, args.model))
        names, paths = np.asarray(names)[found].tolist(), np.asarray(paths)[found].tolist()
    if len(set(names)) < 2 or len(names) < 4:
        raise PathError(args.data, f'{len(names)} images of {len(set(names))} people: a map needs at least '
                                   'two people and four images')
    maps = project(embeddings, args.method, args.perplexity, args.seed)
    scores = {'embeddings': nearest_neighbour_accuracy(embeddings, names)}
    scores.update({method: nearest_neighbour_accuracy(points, names) for method, points in maps.items()})
    for method, score in scores.items():
        print(f'nearest-neighbour accuracy ({method}): {score:.3f}')
    draw(maps, names, paths if args.thumbnails else None, args.output, args.title or os.path.basename(
        os.path.normpath(args.data)), scores)
    print(f'Map of {len(names)} images of {len(set(names))} people written to {args.output}')
    return maps, scores


def limit_identities(names, paths, embeddings, max_identities, max_images):
    """The first max_identities people (in order) with at most max_images images each."""
    kept, counts = [], {}
    for i, name in enumerate(names):
        if (name in counts or len(counts) < (max_identities or np.inf)) and counts.get(name, 0) < (max_images or np.inf):
            counts[name] = counts.get(name, 0) + 1
            kept.append(i)
    return ([names[i] for i in kept], [paths[i] for i in kept],
            None if embeddings is None else np.asarray(embeddings)[kept])


def project(embeddings, method, perplexity, seed):
    """{'PCA': [N, 2], 't-SNE': [N, 2]} (the ones `method` asks for)."""
    maps = {}
    if method in ('pca', 'both'):
        maps['PCA'] = PCA(n_components=2, random_state=seed).fit_transform(embeddings)
    if method in ('tsne', 'both'):
        # One OpenMP thread for small maps: measured 0.3 s against 59 s with the default threads on a
        # busy 2-core machine (the threads spin waiting for each other).
        with threadpool_limits(1 if len(embeddings) < SMALL_MAP else None):
            # t-SNE needs perplexity below the number of points.
            maps['t-SNE'] = TSNE(n_components=2, perplexity=min(perplexity, (len(embeddings) - 1) / 3), init='pca',
                                 random_state=seed).fit_transform(embeddings)
    return maps


def nearest_neighbour_accuracy(points, names):
    """How often the nearest other point has the same name (leave-one-out 1-NN accuracy)."""
    points = np.asarray(points, np.float64)
    squared = np.sum(points ** 2, axis=1)
    distances = squared[:, np.newaxis] + squared[np.newaxis] - 2 * points @ points.T
    np.fill_diagonal(distances, np.inf)
    names = np.asarray(names)
    return float(np.mean(names[np.argmin(distances, axis=1)] == names))


def draw(maps, names, thumbnails, filename, title, scores):
    from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage  # pylint: disable=import-outside-toplevel
    people = list(dict.fromkeys(names))
    colours = [f'C{i % 10}' if len(people) <= 10 else _colour(i, len(people)) for i in range(len(people))]
    markers = 'os^Dv<>phP*X'
    figure = Figure(figsize=(7 * len(maps) + (3 if len(people) <= 30 else 0), 7), dpi=100)
    axes = figure.subplots(1, len(maps), squeeze=False)[0]
    images = _thumbnail_images(thumbnails) if thumbnails else None
    for ax, (method, points) in zip(axes, maps.items()):
        for i, person in enumerate(people):
            rows = [j for j, name in enumerate(names) if name == person]
            ax.scatter(points[rows, 0], points[rows, 1], s=36, color=colours[i], marker=markers[(i // 10) % len(markers)],
                       label=person.replace('_', ' '), edgecolors='black', linewidths=0.3)
            for j in rows if images is not None else ():
                if images[j] is not None:
                    box = AnnotationBbox(OffsetImage(images[j], zoom=0.25), points[j], frameon=True, pad=0.1,
                                         bboxprops={'edgecolor': colours[i], 'linewidth': 2})
                    ax.add_artist(box)
        ax.set_title(f'{method}: nearest-neighbour accuracy {scores[method]:.3f}')
        ax.set_xticks([])
        ax.set_yticks([])
    if len(people) <= 30:
        axes[-1].legend(loc='upper left', bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    figure.suptitle(f'{title}: {len(names)} images of {len(people)} people '
                    f'(embedding-space nearest-neighbour accuracy {scores["embeddings"]:.3f})')
    figure.tight_layout()
    with atomic_path(filename) as temporary:
        figure.savefig(temporary)


def _colour(i, n):
    import matplotlib  # pylint: disable=import-outside-toplevel
    return matplotlib.colormaps['hsv'](i / n)


def _thumbnail_images(paths):
    images = []
    for path in paths:
        try:
            images.append(read_image(path)[::2, ::2])  # half size: the zoom would drop the rest anyway
        except ImageReadError:
            images.append(None)
    return images


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('model', type=str,
                        help='A model directory, a frozen .pb, a checkpoint folder, a SavedModel, .keras or .h5 file '
                             '(unused for an embeddings .npy).')
    parser.add_argument('data', type=str,
                        help='A folder with one folder of images per person, or an embeddings .npy.')
    parser.add_argument('output', type=str, help='The PNG to write.')
    parser.add_argument('--labels', type=str,
                        help='For an embeddings .npy: the names of its rows (default: label_strings.npy beside it).')
    parser.add_argument('--method', choices=['both', 'pca', 'tsne'], default='both', help='Which maps to draw.')
    parser.add_argument('--thumbnails', action='store_true', help='Draw each image at its point.')
    parser.add_argument('--max_identities', type=positive_int, help='Draw only the first N people.')
    parser.add_argument('--max_images_per_identity', type=positive_int, help='Draw at most N images of a person.')
    parser.add_argument('--perplexity', type=float, default=30.0, help='t-SNE perplexity.')
    parser.add_argument('--seed', type=int, default=0, help='Seed of PCA and t-SNE.')
    parser.add_argument('--title', type=str, help='Title of the figure (default: the data folder name).')
    add_face_image_arguments(parser, image_size_help='Image size when the model does not say (height, width) in pixels.')
    parser.add_argument('--batch_size', type=positive_int, default=100, help='Number of images to embed at a time.')
    add_standardization_argument(parser)
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
