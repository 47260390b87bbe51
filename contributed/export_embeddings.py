"""Exports the embeddings and labels of a directory of images as numpy arrays.

As the original contributed script (Charles Jekel, 2017): point it at a model and a
folder-per-identity directory of images:

    python contributed/export_embeddings.py ~/models/20170512-110547 ~/datasets/lfw/mylfw

Output: embeddings.npy (one row per image), labels.npy (the identity index of each row) and
label_strings.npy (the identity folder name of each row), in the current folder as the original
wrote them, or in --output_dir; --embeddings_name, --labels_name and --labels_strings_name change
the names. The model may also be a pretrained model name (20180402-114759: images are then
standardised as that model expects). Images are expected aligned (as align_dataset_mtcnn.py
writes them); with `--is_aligned False` each image is aligned on the fly like compare.py does
(first face, --margin, --image_size). --image_batch sets how many images are processed at a time.

Fixed here: any value of the original's --is_aligned, "True" included, meant "not aligned"
(it compared the string with `is True`); label_strings came from os.listdir, whose order need not
match the sorted class order of the labels; an image without a face crashed the unaligned mode.
Images that cannot be read or have no face are reported and left out of all three arrays.
"""
import argparse
import os
import time

import numpy as np

import facenet
from align import detect_face
from compare import load_and_align_data
from facenet_tf2 import pretrained
from facenet_tf2.arguments import positive_int, str2bool
from facenet_tf2.cli import check_output_dir, run_script
from facenet_tf2.dataset import require_dataset
from facenet_tf2.embeddings import embed_images
from facenet_tf2.files import atomic_path
from facenet_tf2.pipeline import UnreadableImages


def main(args):
    dataset = require_dataset(args.data_dir, 'data folder')
    output_dir = check_output_dir(args.output_dir)
    standardization = pretrained.standardization(args.model_dir, 'prewhiten')
    image_list, label_list = facenet.get_image_paths_and_labels(dataset)
    print('Number of images: ', len(image_list))
    model = facenet.load_model(args.model_dir)
    start_time = time.time()
    if args.is_aligned:
        unreadable = UnreadableImages()
        embedded = embed_images(model, image_list, args.image_size, args.image_batch, unreadable=unreadable,
                                use_fixed_image_standardization=standardization == 'fixed')
        if unreadable:
            print(unreadable.summary())
        emb_array, kept = embedded.embeddings[embedded.found], embedded.found
    else:
        emb_array, kept = embed_unaligned(model, image_list, args, standardization)
    print('Run time: ', time.time() - start_time)

    labels = np.asarray(label_list)[kept]
    label_strings = np.array([cls.name for cls in dataset])[labels] if len(labels) else np.array([], dtype=str)
    for filename, array in ((args.embeddings_name, emb_array), (args.labels_name, labels),
                            (args.labels_strings_name, label_strings)):
        filename = filename if filename.endswith('.npy') else filename + '.npy'  # as np.save names it
        with atomic_path(os.path.join(output_dir, filename)) as temporary, open(temporary, 'wb') as f:
            np.save(f, array)
    print(f'Saved {len(labels)} embeddings to {args.embeddings_name}, {args.labels_name}, {args.labels_strings_name}'
          f' in {output_dir}')


def embed_unaligned(model, image_list, args, standardization='prewhiten'):
    """Embeddings of the first face of each image, and the mask of images that had one."""
    networks = detect_face.create_mtcnn(None, None)
    rows, kept = [], np.zeros(len(image_list), bool)
    for start in range(0, len(image_list), args.image_batch):
        batch = image_list[start:start + args.image_batch]
        with_face = list(batch)  # load_and_align_data removes the images without a face from it
        try:
            images = load_and_align_data(with_face, args.image_size, args.margin, args.gpu_memory_fraction,
                                         standardization, networks=networks)
        except ValueError:  # no face in any image of the batch
            continue
        rows.append(np.asarray(model(images)))
        with_face = set(with_face)
        kept[start:start + len(batch)] = [path in with_face for path in batch]
        print('Completed batch', start // args.image_batch + 1, 'of', -(-len(image_list) // args.image_batch))
    embedding_size = model.embedding_size
    return (np.concatenate(rows) if rows else np.zeros((0, embedding_size), np.float32)), kept


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('model_dir', type=str,
                        help='A model directory, a frozen .pb, a checkpoint folder, a SavedModel, .keras or .h5 file, '
                             f'or a pretrained model name ({pretrained.names_text()}).')
    parser.add_argument('data_dir', type=str,
                        help='Directory containing images. If images are not already aligned and cropped include '
                             '--is_aligned False.')
    parser.add_argument('--is_aligned', type=str2bool, default=True,
                        help='Is the data directory already aligned and cropped? (True/False)')
    parser.add_argument('--image_size', type=positive_int, default=160, help='Image size (height, width) in pixels.')
    parser.add_argument('--margin', type=int, default=44,
                        help='Margin for the crop around the bounding box (height, width) in pixels.')
    parser.add_argument('--gpu_memory_fraction', type=float, default=1.0,
                        help='Upper bound on the amount of GPU memory that will be used by the process.')
    parser.add_argument('--image_batch', type=positive_int, default=500,
                        help='Number of images stored in memory at a time. Default 500.')
    parser.add_argument('--output_dir', type=str, default='.',
                        help='Folder to write the three .npy files to (default: the current folder, as the '
                             'original).')
    parser.add_argument('--embeddings_name', type=str, default='embeddings.npy',
                        help='File name of the embeddings numpy array.')
    parser.add_argument('--labels_name', type=str, default='labels.npy', help='File name of the labels numpy array.')
    parser.add_argument('--labels_strings_name', type=str, default='label_strings.npy',
                        help='File name of the labels-as-strings numpy array.')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
