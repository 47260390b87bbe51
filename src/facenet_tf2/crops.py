"""Whether image files look like the aligned face crops a tool expects.

The tools that take aligned thumbnails (clustering.py, batch_represent.py, classifier.py, ...)
centre-crop or resize whatever they are given, so raw photos are embedded as the middle of the
whole picture and give nonsense (on 118 raw web photos of five people, Chinese whispers scored an
adjusted Rand index of 0.11, against 0.83 on their aligned crops). Aligned crops are squares of
the network's input size; `not_aligned_warning` says when files are not.
"""
import sys

from PIL import Image

# Image headers read at most: enough to see a folder of photos, quick on a large dataset.
_SAMPLE = 200


def not_aligned_warning(image_paths, image_size, alternative=None):
    """A one-line warning when some of `image_paths` (up to 200 spread over the list, headers only)
    are not image_size x image_size, naming one and what to do (align_dataset_mtcnn.py, or
    `alternative`, e.g. a flag that aligns on the fly); None when all are (or none can be opened:
    reading them reports that)."""
    paths = list(image_paths)
    if not paths or not image_size:
        return None
    sample = paths[::max(1, len(paths) // _SAMPLE)][:_SAMPLE]
    wrong = []
    for path in sample:
        try:
            with Image.open(path) as image:
                if image.size != (image_size, image_size):
                    wrong.append((path, image.size))
        except OSError:
            continue
    if not wrong:
        return None
    path, (width, height) = wrong[0]
    return (f'Warning: {len(wrong)} of {len(sample)} images checked are not {image_size}x{image_size} aligned face '
            f'crops (e.g. {path} is {width}x{height}), so they are embedded as centre crops of the whole picture; '
            f'align them first with align_dataset_mtcnn.py --image_size {image_size}'
            + (f', or {alternative}' if alternative else ''))


def warn_if_not_aligned(image_paths, image_size, alternative=None):
    """Prints not_aligned_warning to stderr when there is one; returns it."""
    warning = not_aligned_warning(image_paths, image_size, alternative)
    if warning:
        print(warning, file=sys.stderr)
    return warning
