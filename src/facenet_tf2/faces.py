"""Faces in photos: MTCNN detection, the aligner's crop, and embeddings of the crops or of image files.

compare.py, export_embeddings.py, face.py, cluster.py, predict.py, identify.py and the other
contributed tools all go from photos (or aligned thumbnails) to embeddings through here, with the
original align script's detector settings and crop (detection.aligner).
"""
import logging
import os
from dataclasses import dataclass

import numpy as np

from facenet_tf2.crops import warn_if_not_aligned
from facenet_tf2.detection import mtcnn as detect_face
from facenet_tf2.detection.aligner import FACTOR, MINSIZE, THRESHOLD, align_faces
from facenet_tf2.errors import UserError
from facenet_tf2.devices import configure_tensorflow
from facenet_tf2.embeddings import embed_images
from facenet_tf2.images import STANDARDIZATIONS, read_image
from facenet_tf2.errors import ImageReadError
from facenet_tf2.pipeline import UnreadableImages

log = logging.getLogger(__name__)


def create_detector(gpu_memory_fraction=1.0):
    """The (pnet, rnet, onet) of MTCNN, TensorFlow configured first as the original scripts did."""
    configure_tensorflow(gpu_memory_fraction=gpu_memory_fraction)
    return detect_face.create_mtcnn(None, None)


@dataclass
class Face:
    """One face MTCNN found: the aligned uint8 crop [S, S, 3], the crop box [4] (x1, y1, x2, y2 in
    pixels of the photo, margin included), MTCNN's own box [4] and detection probability, and its
    five landmarks [5, 2] (x, y: left eye, right eye, nose, left and right mouth corner)."""
    crop: np.ndarray
    crop_box: np.ndarray
    box: np.ndarray
    probability: float
    landmarks: np.ndarray


def detect_faces(images, networks, margin, image_size, min_probability=0.0):
    """Every face MTCNN finds in each RGB uint8 image, in one detector pass over all of them (same-size
    images share P-Net calls): per image a list of Face, in MTCNN's order. Faces scoring below
    min_probability are left out, and so is a box that clips to nothing (it has no crop)."""
    detections = detect_face.detect_faces(list(images), MINSIZE, *networks, THRESHOLD, FACTOR)
    found = []
    for img, (bounding_boxes, points) in zip(images, detections):
        faces = []
        for row, landmarks in zip(bounding_boxes, np.asarray(points).reshape(10, -1).T):
            if row[4] < min_probability:
                continue
            # One box at a time, so each crop keeps its probability and landmarks.
            faces += [Face(crop, box, row[:4].astype(np.float32), float(row[4]),
                           np.stack([landmarks[:5], landmarks[5:]], axis=1).astype(np.float32))
                      for crop, box in align_faces(img, row[np.newaxis], margin, image_size, detect_multiple_faces=True)]
        found.append(faces)
    return found


def find_faces(images, networks, margin, image_size, min_probability=0.0):
    """Every face MTCNN finds in each RGB uint8 image, cropped with `margin` and resized to
    image_size: per image a list of (crop uint8 [S, S, 3], crop box [4], detection probability),
    in MTCNN's order. Faces scoring below min_probability are left out."""
    return [[(face.crop, face.crop_box, face.probability) for face in faces]
            for faces in detect_faces(images, networks, margin, image_size, min_probability)]


def standardize(crops, standardization='prewhiten'):
    """Aligned uint8 crops [N, S, S, 3] -> the float32 input the model was trained on."""
    standardize_one = STANDARDIZATIONS[standardization]
    return np.stack([standardize_one(crop) for crop in crops]).astype(np.float32)


def embed_crops(model, crops, standardization='prewhiten', batch_size=100):
    """Embeddings [N, D] of aligned uint8 crops."""
    rows = [np.asarray(model(standardize(crops[start:start + batch_size], standardization)))
            for start in range(0, len(crops), batch_size)]
    return np.concatenate(rows) if rows else np.zeros((0, model.embedding_size), np.float32)


def load_and_align_data(image_paths, image_size, margin, gpu_memory_fraction, standardization='prewhiten',
                        networks=None):
    """Aligned, standardised faces [N, image_size, image_size, 3], one per image of `image_paths`
    (compare.py's). networks: the (pnet, rnet, onet) of create_detector, to reuse them across calls.

    As the original, images without a face (and here unreadable ones) are reported and removed
    from `image_paths`, so it lists the images the rows belong to; a path given twice keeps both
    rows. Raises UserError when none is left.
    """
    if networks is None:
        log.info('Creating networks and loading parameters')
        networks = create_detector(gpu_memory_fraction)
    readable = []  # (path, image), one per entry of image_paths: a dict would merge duplicates
    for path in image_paths:
        try:
            readable.append((path, read_image(os.path.expanduser(path))))
        except ImageReadError as e:
            log.info(f"can't read image, remove {path}: {e.problem}")
    kept, crops = [], []
    for (path, _), faces in zip(readable, find_faces([image for _, image in readable], networks, margin, image_size)):
        # The original's choice: the first face MTCNN returns (not the align script's most central one).
        if not faces:
            log.info(f"can't detect face, remove  {path}")  # the original's print(text, path) spacing
            continue
        kept.append(path)
        crops.append(faces[0][0])
    image_paths[:] = kept
    if not crops:
        raise UserError('no face found in any of the images, give photos with a visible face')
    return standardize(crops, standardization)


def embed_unaligned(model, image_paths, image_size, margin, batch_size, standardization='prewhiten', networks=None):
    """Embeddings of the first face of each photo, and the mask of photos that had one (unreadable
    photos and photos without a face are reported and get found=False)."""
    networks = networks or create_detector()
    rows, kept = [], np.zeros(len(image_paths), bool)
    for start in range(0, len(image_paths), batch_size):
        batch = list(image_paths[start:start + batch_size])
        with_face = list(batch)  # load_and_align_data removes the images without a face from it
        try:
            images = load_and_align_data(with_face, image_size, margin, 1.0, standardization, networks=networks)
        except ValueError:  # no face in any image of the batch
            continue
        rows.append(np.asarray(model(images)))
        with_face = set(with_face)
        kept[start:start + len(batch)] = [path in with_face for path in batch]
    return (np.concatenate(rows) if rows else np.zeros((0, model.embedding_size), np.float32)), kept


def embed_image_files(model, image_paths, image_size=160, batch_size=100, is_aligned=True, margin=44,
                      standardization='prewhiten', networks=None):
    """(embeddings [M, D], found [N]): the embeddings of the images of `image_paths` that could be
    used, in order, and which ones they are. Aligned thumbnails go through the tf.data pipeline
    (embed_images; a warning when they are not image_size squares, see facenet_tf2.crops); photos are aligned on the fly (first face, `margin`). Unreadable images and
    photos without a face are reported and left out."""
    if not is_aligned:
        return embed_unaligned(model, image_paths, image_size, margin, batch_size, standardization, networks)
    if not image_paths:
        return np.zeros((0, model.embedding_size), np.float32), np.zeros(0, bool)
    warn_if_not_aligned(image_paths, image_size, 'pass --is_aligned False to find the faces on the fly (cluster.py '
                        'clusters photos that way)')
    unreadable = UnreadableImages()
    try:
        embedded = embed_images(model, image_paths, image_size, batch_size,
                                use_fixed_image_standardization=standardization == 'fixed', unreadable=unreadable)
    except ValueError:  # none could be read; each one was reported
        return np.zeros((0, model.embedding_size), np.float32), np.zeros(len(image_paths), bool)
    if unreadable:
        log.info(unreadable.summary())
    return embedded.embeddings[embedded.found], embedded.found
