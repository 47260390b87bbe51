"""Folder-per-identity datasets: listing, labelling and train/test splits (the original's API)."""
import logging
import math
import os
import random

import numpy as np

from facenet_tf2.errors import PathError
from facenet_tf2.images import is_image_file

log = logging.getLogger(__name__)


class ImageClass:
    """The image paths of one identity."""

    def __init__(self, name, image_paths):
        self.name = name
        self.image_paths = image_paths

    def __str__(self):
        return f'{self.name}, {len(self.image_paths)} images'

    def __repr__(self):
        return f'ImageClass({self.name!r}, {len(self.image_paths)} images)'

    def __len__(self):
        return len(self.image_paths)


def get_image_paths(facedir):
    """The image files in a folder, sorted; other files (text, hidden files, folders) are ignored."""
    if not os.path.isdir(facedir):
        return []
    names = sorted(name for name in os.listdir(facedir) if is_image_file(name))
    return [os.path.join(facedir, name) for name in names if os.path.isfile(os.path.join(facedir, name))]


def get_dataset(path, has_class_directories=True):
    """One ImageClass per sub-folder of `path` (sorted by name), each with its sorted image files.

    A folder without images still gets its class, so class indices match the folder order, as in
    the original; it is reported once as a warning. With has_class_directories=False, `path`
    itself is one class of images.
    """
    path_exp = os.path.expanduser(path)
    if not os.path.isdir(path_exp):
        raise FileNotFoundError(f'{path}: dataset folder not found')
    if not has_class_directories:
        return [ImageClass(os.path.basename(os.path.normpath(path_exp)), get_image_paths(path_exp))]
    classes = sorted(name for name in os.listdir(path_exp)
                     if not name.startswith('.') and os.path.isdir(os.path.join(path_exp, name)))
    dataset = [ImageClass(name, get_image_paths(os.path.join(path_exp, name))) for name in classes]
    empty = [cls.name for cls in dataset if not cls.image_paths]
    if empty:
        log.warning('%s: %d identity folder(s) without images: %s', path, len(empty),
                    ', '.join(empty[:10]) + (' ...' if len(empty) > 10 else ''))
    return dataset


def require_dataset(path, what='dataset folder'):
    """get_dataset(path) for a script's input: a PathError says what to do when `path` is no folder,
    holds images but no identity sub-folders, or holds no image at all."""
    path_exp = os.path.expanduser(str(path))
    if not os.path.exists(path_exp):
        raise PathError(path, f'no such {what}, check the path')
    if not os.path.isdir(path_exp):
        raise PathError(path, f'is a file, not a {what}; give the folder')
    dataset = get_dataset(path)
    if not any(cls.image_paths for cls in dataset):
        loose = get_image_paths(path_exp)
        if loose:
            raise PathError(path, f'{len(loose)} images but no identity sub-folders; put each person\'s images in '
                                  f'a folder of their own ({os.path.join(str(path), "Name", os.path.basename(loose[0]))})')
        raise PathError(path, f'no images in the {what}; expected one folder of images per person, '
                              f'{os.path.join(str(path), "Name", "image.jpg")}')
    return dataset


def get_image_paths_and_labels(dataset):
    """Flattens a dataset into parallel lists of image paths and class indices."""
    image_paths, labels = [], []
    for label, cls in enumerate(dataset):
        image_paths += cls.image_paths
        labels += [label] * len(cls.image_paths)
    return image_paths, labels


def shuffle_examples(image_paths, labels):
    pairs = list(zip(image_paths, labels))
    random.shuffle(pairs)
    image_paths_shuffled, labels_shuffled = zip(*pairs) if pairs else ((), ())
    return image_paths_shuffled, labels_shuffled


def split_dataset(dataset, split_ratio, min_nrof_images_per_class, mode):
    """Splits into (train_set, test_set) with NumPy's global random state, as the original.

    SPLIT_CLASSES: a `split_ratio` fraction of the identities goes to the test set.
    SPLIT_IMAGES: within each identity a `split_ratio` fraction of images is held out (at least
    one); identities with fewer than `min_nrof_images_per_class` training images are dropped.
    Two bugs of the original are fixed: SPLIT_CLASSES lost the last identity (`[split:-1]`), and
    SPLIT_IMAGES shuffled the caller's path lists in place.
    """
    if mode == 'SPLIT_CLASSES':
        class_indices = np.arange(len(dataset))
        np.random.shuffle(class_indices)
        split = int(round(len(dataset) * (1 - split_ratio)))
        train_set = [dataset[i] for i in class_indices[:split]]
        test_set = [dataset[i] for i in class_indices[split:]]
    elif mode == 'SPLIT_IMAGES':
        train_set, test_set = [], []
        for cls in dataset:
            paths = list(cls.image_paths)
            np.random.shuffle(paths)
            nrof_images = len(paths)
            split = int(math.floor(nrof_images * (1 - split_ratio)))
            if split == nrof_images:
                split = nrof_images - 1
            if split >= min_nrof_images_per_class and nrof_images - split >= 1:
                train_set.append(ImageClass(cls.name, paths[:split]))
                test_set.append(ImageClass(cls.name, paths[split:]))
    else:
        raise ValueError(f'Invalid train/test split mode "{mode}" (use SPLIT_CLASSES or SPLIT_IMAGES)')
    return train_set, test_set
