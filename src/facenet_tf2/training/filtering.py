"""Dataset filtering by distance to the class centre: the HDF5 that calculate_filtering_metrics.py
writes and train_softmax.py's --filter_filename reads.

The file holds, per image of the dataset, `image_list` (its path), `label_list` (its class index)
and `distance_to_center` (Euclidean distance of its embedding to the mean embedding of its
class; NaN for an image that could not be read), and `class_names` (the dataset's classes in
label order), as the original wrote it.

filter_dataset works as the original's, with these differences:
- it returns a new dataset and leaves the caller's as it was (the original removed paths from
  the caller's ImageClass objects);
- classes are found by name and images by file name within their class, so a dataset read from
  another spelling of the same folder still matches, and labels pointing at a different class
  (the dataset changed since the file was written) are an error instead of removing images of
  the wrong class;
- an image or class of the file that the dataset does not have is an error naming the file;
- min_nrof_images_per_class applies to every class, as its help says ("keep only the classes
  with this number of examples or more"); the original checked only classes that lost images.
"""
import logging
import os

import h5py
import numpy as np

from facenet_tf2.dataset import ImageClass
from facenet_tf2.files import atomic_path
from facenet_tf2.errors import PathError

log = logging.getLogger(__name__)

KEYS = ('class_names', 'image_list', 'label_list', 'distance_to_center')


def distance_to_center(embeddings, labels, found=None):
    """Per image, the Euclidean distance of its embedding to its class centre (the mean of the
    class's embeddings), in float64 as the original. Images with found False (unreadable) take no
    part in the centres and get NaN, as do all images of a class without a found image."""
    embeddings = np.asarray(embeddings, np.float64)
    labels = np.asarray(labels)
    found = np.ones(len(labels), bool) if found is None else np.asarray(found, bool)
    distances = np.full(len(labels), np.nan)
    for label in np.unique(labels[found]):
        members = np.flatnonzero((labels == label) & found)
        center = embeddings[members].mean(axis=0)
        distances[members] = np.sqrt(np.sum(np.square(embeddings[members] - center), axis=1))
    return distances


def write_filtering_metrics(filename, dataset, image_list, label_list, distances):
    """Writes the filtering HDF5 atomically (strings as UTF-8)."""
    strings = h5py.string_dtype('utf-8')
    with atomic_path(filename) as temporary, h5py.File(temporary, 'w') as f:
        f.create_dataset('class_names', data=np.array([cls.name for cls in dataset], dtype=object), dtype=strings)
        f.create_dataset('image_list', data=np.array(list(image_list), dtype=object), dtype=strings)
        f.create_dataset('label_list', data=np.asarray(label_list, np.int64))
        f.create_dataset('distance_to_center', data=np.asarray(distances, np.float64))


def read_filtering_metrics(filename):
    """(class_names, image_list, label_list, distance_to_center) from the HDF5, as lists of str
    and NumPy arrays. Files of the original (Python 2, byte strings) read the same."""
    try:
        f = h5py.File(filename, 'r')
    except OSError as e:
        raise PathError(filename, f'cannot read the filtering HDF5 ({e})') from None
    with f:
        missing = [key for key in KEYS if key not in f]
        if missing:
            raise PathError(filename, f'not a filtering metrics file: no {", ".join(missing)} '
                                      '(write it with calculate_filtering_metrics.py)')
        class_names = list(f['class_names'].asstr()[()])
        image_list = list(f['image_list'].asstr()[()])
        label_list = np.asarray(f['label_list'][()], np.int64)
        distances = np.asarray(f['distance_to_center'][()], np.float64)
    if not len(image_list) == len(label_list) == len(distances):
        raise PathError(filename, f'{len(image_list)} images, {len(label_list)} labels and {len(distances)} '
                                  'distances: the lists must have one entry per image')
    bad_labels = label_list[(label_list < 0) | (label_list >= len(class_names))]
    if bad_labels.size:
        raise PathError(filename, f'label {bad_labels[0]} is not one of its {len(class_names)} classes')
    return class_names, image_list, label_list, distances


def find_threshold(var, percentile):
    """The distance below which `percentile` percent of `var` lies, read off a 100-bin histogram
    (cumulative counts interpolated between bin centres), as the original. NaNs are left out.

    At percentile 100 this is the centre of the last bin, so the farthest images (those in the
    upper half of the last bin) are still removed, as in the original."""
    var = np.asarray(var, np.float64)
    hist, bin_edges = np.histogram(var[np.isfinite(var)], 100)
    cdf = np.cumsum(hist).astype(np.float32) / np.sum(hist)
    bin_centers = (bin_edges[:-1] + bin_edges[1:]) / 2
    return np.interp(percentile * 0.01, cdf, bin_centers)


def filter_dataset(dataset, data_filename, percentile, min_nrof_images_per_class):
    """A new dataset without the images whose distance to their class centre is at or above the
    `percentile` threshold (find_threshold), and without the classes left with fewer than
    `min_nrof_images_per_class` images. `dataset` (a list of ImageClass) is not changed. Images
    of the dataset that the file does not list are kept (a warning counts them); images with a NaN
    distance (unreadable when the file was written) are kept too: the input pipeline skips
    unreadable files itself.
    """
    class_names, image_list, label_list, distances = read_filtering_metrics(data_filename)
    if not np.isfinite(distances).any():
        raise PathError(data_filename, 'no image has a distance_to_center (none could be read when it was written)')
    classes = {cls.name: cls for cls in dataset}
    unknown = sorted(set(class_names[label] for label in label_list) - set(classes))
    if unknown:
        raise PathError(data_filename, f'{len(unknown)} of its classes are not in the dataset, e.g. {unknown[0]}: '
                                       'the file was written for another dataset')
    files = {name: {os.path.basename(path): path for path in cls.image_paths} for name, cls in classes.items()}
    listed = [(class_names[label], os.path.basename(path)) for path, label in zip(image_list, label_list)]
    absent = [f'{name}/{file}' for name, file in listed if file not in files[name]]
    if absent:
        raise PathError(data_filename, f'{len(absent)} of its images are not in the dataset, e.g. {absent[0]}: '
                                       'the file was written for another version of the dataset')
    nrof_unlisted = sum(len(cls.image_paths) for cls in dataset) - len(set(listed))
    if nrof_unlisted:
        log.warning('%s lists no distance for %d image(s) of the dataset; they are kept', data_filename,
                    nrof_unlisted)

    threshold = find_threshold(distances, percentile)
    removed = {files[name][file] for (name, file), distance in zip(listed, distances) if distance >= threshold}
    filtered = [ImageClass(cls.name, [path for path in cls.image_paths if path not in removed]) for cls in dataset]
    return [cls for cls in filtered if len(cls.image_paths) >= min_nrof_images_per_class]
