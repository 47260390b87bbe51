"""Fidelity of the MTCNN alignment to the original facenet code, on the shared LFW images.

Aligns the images as `align_dataset_mtcnn.py --image_size 160 --margin 32` does (same library code, no
files written) and compares with what the original produced (../shared/reference, see its README):
the set of images with a face, the integer crop boxes (within 1 pixel) and the MD5 of every crop's
pixels. Prints the figures; exit status 1 if a target is missed (same face set, boxes within 1 px on
>= 99.5% of images, identical crops on >= 99%).

    python benchmarks/check_align_fidelity.py                 # all images in the reference
    python benchmarks/check_align_fidelity.py --sample 300    # an evenly spaced sample
"""
import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / 'src'))

from facenet_tf2.detection import aligner, mtcnn as detect_face  # noqa: E402 pylint: disable=wrong-import-position
from facenet_tf2.images import read_image  # noqa: E402 pylint: disable=wrong-import-position

IMAGE_SIZE = 160
MARGIN = 32
BOXES_TARGET = 0.995
CROPS_TARGET = 0.99


def read_reference(reference_dir):
    """{image path relative to lfw-deepfunneled: (crop box [4] or None, crop md5)}."""
    def rows(name):
        with open(os.path.join(reference_dir, name), encoding='utf-8') as f:
            return [line.rstrip('\n').split('\t') for line in f if not line.startswith('#') and line.strip()]
    md5 = dict(rows('original_crops_md5_lfw_160_m32.tsv'))
    return {row[0]: ([int(v) for v in row[1:5]] if len(row) >= 5 else None, md5[row[0]])
            for row in rows('original_bounding_boxes_lfw_160_m32.tsv')}


def evenly_spaced(paths, count, always=()):
    """`count` paths spread evenly over the sorted list, plus those in `always`."""
    paths = sorted(paths)
    step = max(1, len(paths) // max(1, count))
    return sorted(set(paths[::step][:count]) | (set(always) & set(paths)))


def no_face_images(reference):
    return [path for path, (box, _) in reference.items() if box is None]


def align_for_comparison(lfw_dir, paths, networks, batch_size=aligner.BATCH_SIZE):
    """{path: (crop box as a list, crop md5)} or (None, None) where no face was found."""
    found = {}
    for start in range(0, len(paths), batch_size):
        batch = paths[start:start + batch_size]
        images = [read_image(os.path.join(lfw_dir, path)) for path in batch]
        detections = detect_face.detect_faces(images, aligner.MINSIZE, *networks, aligner.THRESHOLD, aligner.FACTOR)
        for path, img, (bounding_boxes, _) in zip(batch, images, detections):
            faces = aligner.align_faces(img, bounding_boxes, MARGIN, IMAGE_SIZE, detect_multiple_faces=False)
            if faces:
                scaled, bb = faces[0]
                found[path] = ([int(v) for v in bb], hashlib.md5(scaled.tobytes()).hexdigest())
            else:
                found[path] = (None, None)
    return found


def compare(reference, found):
    """The fidelity figures of `found` (align_for_comparison) against the reference."""
    face_set_differs = sorted(p for p in found if (reference[p][0] is None) != (found[p][0] is None))
    both = [p for p in found if reference[p][0] is not None and found[p][0] is not None]
    box_off = sorted(p for p in both if max(abs(a - b) for a, b in zip(reference[p][0], found[p][0])) > 1)
    crop_differs = sorted(p for p in both if reference[p][1] != found[p][1])
    return {
        'images': len(found),
        'with_face_reference': sum(reference[p][0] is not None for p in found),
        'with_face_port': sum(found[p][0] is not None for p in found),
        'face_set_differs': face_set_differs,
        'compared': len(both),
        'boxes_within_1px': 1 - len(box_off) / max(1, len(both)),
        'boxes_identical': sum(reference[p][0] == found[p][0] for p in both) / max(1, len(both)),
        'crops_identical': 1 - len(crop_differs) / max(1, len(both)),
        'box_off': box_off,
        'crop_differs': crop_differs,
    }


def meets_targets(figures):
    return (not figures['face_set_differs'] and figures['boxes_within_1px'] >= BOXES_TARGET
            and figures['crops_identical'] >= CROPS_TARGET)


def main(args):
    shared = Path(os.environ.get('FACENET_SHARED', REPO_ROOT.parent / 'shared'))
    lfw_dir = args.lfw_dir or str(shared / 'lfw' / 'lfw-deepfunneled')
    reference = read_reference(args.reference_dir or str(shared / 'reference'))
    paths = sorted(reference)
    if args.sample:
        paths = evenly_spaced(paths, args.sample, always=no_face_images(reference))
    networks = detect_face.create_mtcnn(None, args.mtcnn_model_dir)
    start = time.perf_counter()
    figures = compare(reference, align_for_comparison(lfw_dir, paths, networks))
    seconds = time.perf_counter() - start
    print(f"images: {figures['images']} (with a face: original {figures['with_face_reference']}, "
          f"this port {figures['with_face_port']}); {seconds:.0f} s")
    print(f"same set of images with and without a face: {not figures['face_set_differs']} "
          f"{figures['face_set_differs'] or ''}")
    print(f"boxes within 1 px: {100 * figures['boxes_within_1px']:.3f}% of {figures['compared']} "
          f"(identical: {100 * figures['boxes_identical']:.3f}%; target {100 * BOXES_TARGET}%)")
    print(f"pixel-identical crops: {100 * figures['crops_identical']:.3f}% (target {100 * CROPS_TARGET}%)")
    for key in ('box_off', 'crop_differs'):
        if figures[key]:
            print(f'{key}: ' + ' '.join(figures[key][:20]) + (' ...' if len(figures[key]) > 20 else ''))
    return 0 if meets_targets(figures) else 1


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--sample', type=int, default=0, help='Check an evenly spaced sample of this many images.')
    parser.add_argument('--lfw_dir', default=None, help='Unaligned LFW (default: $FACENET_SHARED/lfw/lfw-deepfunneled).')
    parser.add_argument('--reference_dir', default=None, help='Reference outputs (default: $FACENET_SHARED/reference).')
    parser.add_argument('--mtcnn_model_dir', default=None, help='Original det*.npy folder (default: mtcnn package).')
    return parser.parse_args(argv)


if __name__ == '__main__':
    sys.exit(main(parse_arguments(sys.argv[1:])))
