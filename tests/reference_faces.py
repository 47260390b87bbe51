"""Face crops whose embeddings the original code computed (../shared/reference), for fidelity tests."""
import hashlib

import numpy as np
from PIL import Image

from facenet_tf2.images import prewhiten, read_image

EMBEDDINGS_FILE = 'original_embeddings_20170512-110547_lfw.npz'
# The first images of pairs.txt: two same-person pairs and one different-person pair.
SAMPLE = ['Abel_Pacheco/Abel_Pacheco_0001', 'Abel_Pacheco/Abel_Pacheco_0004', 'Akhmed_Zakayev/Akhmed_Zakayev_0001',
          'Akhmed_Zakayev/Akhmed_Zakayev_0003', 'Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001',
          'Dean_Barker/Dean_Barker_0001']


def reference_embeddings(reference_dir, names):
    reference = np.load(reference_dir / EMBEDDINGS_FILE)
    index = {path: i for i, path in enumerate(reference['paths'])}
    return reference['embeddings'][[index[name + '.png'] for name in names]]


def marilyn(lfw_dir, reference_dir):
    """The one crop defined without the aligner: the central (35, 35, 215, 215) box of
    Marilyn_Monroe_0001 (where the original found no face) resized to 160x160 with PIL bilinear,
    prewhitened [1, 160, 160, 3]; and its reference embedding."""
    image = Image.fromarray(read_image(lfw_dir / 'Marilyn_Monroe' / 'Marilyn_Monroe_0001.jpg'))
    crop = np.asarray(image.crop((35, 35, 215, 215)).resize((160, 160), Image.BILINEAR))
    return prewhiten(crop)[np.newaxis].astype(np.float32), reference_embeddings(reference_dir, [
        'Marilyn_Monroe/Marilyn_Monroe_0001'])[0]


def crop_md5(crop):
    return hashlib.md5(np.ascontiguousarray(crop, dtype=np.uint8).tobytes()).hexdigest()


def reference_md5(reference_dir):
    with open(reference_dir / 'original_crops_md5_lfw_160_m32.tsv', encoding='utf-8') as f:
        return dict(line.rstrip('\n').split('\t') for line in f if not line.startswith('#'))


def aligned_reference_crops(lfw_dir, reference_dir, names=tuple(SAMPLE)):
    """The sample aligned as the original align script did (MTCNN, margin 32, 160x160), keeping the
    crops whose MD5 equals the original's: (names, prewhitened crops [N, 160, 160, 3], reference embeddings)."""
    from align import detect_face  # pylint: disable=import-outside-toplevel
    from facenet_tf2.detection.aligner import FACTOR, MINSIZE, THRESHOLD, align_faces  # pylint: disable=import-outside-toplevel
    images = [read_image(lfw_dir / (name + '.jpg')) for name in names]
    detections = detect_face.detect_faces(images, MINSIZE, *detect_face.create_mtcnn(None, None), THRESHOLD, FACTOR)
    expected_md5 = reference_md5(reference_dir)
    kept, crops = [], []
    for name, img, (bounding_boxes, _) in zip(names, images, detections):
        (crop, _), = align_faces(img, bounding_boxes, 32, 160, False)
        if crop_md5(crop) == expected_md5[name + '.jpg']:
            kept.append(name)
            crops.append(prewhiten(crop))
    return kept, np.stack(crops).astype(np.float32), reference_embeddings(reference_dir, kept)
