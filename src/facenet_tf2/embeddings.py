"""Embedding a list of image files with a model, fed by the tf.data input pipeline.

The pipeline decodes and standardises images in parallel threads and prefetches batches while
the model runs, so the model never waits for input; any batch size works (the last batch is
simply smaller), where the original required the number of images to be a multiple of it.
"""
import logging
import os
import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from facenet_tf2.files import atomic_path
from facenet_tf2.pipeline import FIXED_STANDARDIZATION, create_input_pipeline

log = logging.getLogger(__name__)


@dataclass
class Embeddings:
    """embeddings[i] belongs to image_paths[i]; found[i] is False where the image could not be
    read (its row is zeros). nrof_embedded: the distinct files embedded. Times in seconds: the
    whole embedding loop, within it the time spent in the model and the time spent waiting for
    the input pipeline to deliver a batch (the first one included)."""
    embeddings: np.ndarray
    found: np.ndarray
    nrof_embedded: int
    seconds: float
    model_seconds: float
    input_wait_seconds: float


def embed_images(model, image_paths, image_size, batch_size, *, use_flipped_images=False,
                 use_fixed_image_standardization=None, unreadable=None, progress=None):
    """Embeds every image with `model` (a facenet.load_model callable: images -> [N, D]).

    use_flipped_images: each row is the embedding of the image followed by that of its mirror
    image ([N, 2D]), as the original's --use_flipped_images. The original decoded every file
    twice, the second copy with the FLIP control bit; here each batch is decoded once and its
    mirror image made in the graph, which gives the same input (the standardisations commute
    with the flip) for half the decoding. use_fixed_image_standardization: (x - 127.5) / 128
    instead of per-image standardisation; None: the model's own (model.standardization, known
    for a pretrained model name), else per-image. unreadable: an UnreadableImages that records files
    that cannot be read (they get found=False) instead of stopping with an error.
    progress: show a progress bar (None: when stderr is a terminal).
    """
    # A file listed more than once (LFW's 12,000 pair images are 7,701 files) is embedded once.
    unique_paths = list(dict.fromkeys(image_paths))
    rows = {path: row for row, path in enumerate(unique_paths)}
    nrof_files = len(unique_paths)
    # The label of an image is its row, so each embedding finds its place whatever the pipeline skips.
    labels = np.arange(nrof_files)
    if use_fixed_image_standardization is None:
        use_fixed_image_standardization = getattr(model, 'standardization', None) == 'fixed'
    control = FIXED_STANDARDIZATION if use_fixed_image_standardization else 0
    dataset = create_input_pipeline(unique_paths, labels, control, image_size, batch_size, unreadable=unreadable)
    emb_array, found = None, np.zeros(nrof_files, bool)
    start, model_seconds, input_wait_seconds = time.perf_counter(), 0.0, 0.0
    batches = iter(dataset)
    with tqdm(total=nrof_files, unit='image', desc='embedding',
              disable=None if progress is None else not progress) as bar:
        while True:
            wait_start = time.perf_counter()
            batch = next(batches, None)
            model_start = time.perf_counter()
            input_wait_seconds += model_start - wait_start
            if batch is None:
                break
            images, batch_labels = batch
            embeddings = np.asarray(model(images))
            if use_flipped_images:
                embeddings = np.concatenate([embeddings, np.asarray(model(tf.image.flip_left_right(images)))], axis=1)
            model_seconds += time.perf_counter() - model_start
            if emb_array is None:
                emb_array = np.zeros((nrof_files, embeddings.shape[1]), np.float32)
            batch_labels = np.asarray(batch_labels)
            emb_array[batch_labels] = embeddings
            found[batch_labels] = True
            bar.update(len(batch_labels))
    if emb_array is None:
        raise ValueError(f'none of the {nrof_files} image files could be read')
    path_rows = np.array([rows[path] for path in image_paths], dtype=np.int64)
    return Embeddings(emb_array[path_rows], found[path_rows], nrof_files, time.perf_counter() - start, model_seconds,
                      input_wait_seconds)


def embed_images_resumably(model, image_paths, image_size, batch_size, progress_dir, *, chunk_size=10000, **kwargs):
    """embed_images (same arguments and result) in chunks of `chunk_size` paths, each finished
    chunk saved atomically in `progress_dir`, so that a killed run, started again, embeds only the
    chunks it had not finished. A saved chunk is used only if it holds the same paths; the caller
    removes progress_dir once the result is stored. The times count only this run's chunks."""
    os.makedirs(progress_dir, exist_ok=True)
    start = time.perf_counter()
    parts, nrof_resumed = [], 0
    for first in range(0, len(image_paths), chunk_size):
        paths = list(image_paths[first:first + chunk_size])
        filename = os.path.join(progress_dir, f'chunk_{first // chunk_size:06d}.npz')
        saved = _saved_chunk(filename, paths)
        if saved is None:
            part = embed_images(model, paths, image_size, batch_size, **kwargs)
            with atomic_path(filename) as temporary:
                np.savez(temporary, paths=np.array(paths), embeddings=part.embeddings, found=part.found,
                         nrof_embedded=part.nrof_embedded)
        else:
            part = saved
            nrof_resumed += len(paths)
        parts.append(part)
    if nrof_resumed:
        log.info('%s: %d of %d images were embedded by an earlier run', progress_dir, nrof_resumed, len(image_paths))
    return Embeddings(np.concatenate([part.embeddings for part in parts]), np.concatenate([part.found for part in parts]),
                      sum(part.nrof_embedded for part in parts), time.perf_counter() - start,
                      sum(part.model_seconds for part in parts), sum(part.input_wait_seconds for part in parts))


def _saved_chunk(filename, paths):
    """The Embeddings saved in `filename` if it exists, is readable and holds `paths`, else None."""
    try:
        with np.load(filename) as saved:
            if saved['paths'].tolist() != paths:
                return None
            return Embeddings(saved['embeddings'], saved['found'], int(saved['nrof_embedded']), 0.0, 0.0, 0.0)
    except (OSError, ValueError, KeyError):
        return None
