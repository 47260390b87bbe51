"""argparse value types and options shared by the scripts."""
import argparse

from facenet_tf2.images import STANDARDIZATIONS


def positive_int(text):
    """An int of at least 1 (batch sizes, fold and pair counts), refused by argparse otherwise."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value


def str2bool(value):
    """A real boolean: the original's type=bool made any non-empty string, "False" too, true."""
    if isinstance(value, bool):
        return value
    if value.lower() in ('1', 'true', 'yes', 'y', 'on'):
        return True
    if value.lower() in ('0', 'false', 'no', 'n', 'off', ''):
        return False
    raise argparse.ArgumentTypeError(f'expected a boolean (True/False), got {value!r}')


def add_standardization_argument(parser):
    parser.add_argument('--standardization', choices=sorted(STANDARDIZATIONS), default=None,
                        help="Image standardisation the model was trained with: 'prewhiten' (per-image, the "
                             "original's, 20170512-110547) or 'fixed' ((x - 127.5) / 128, 20180402-114759). "
                             "Default: the pretrained model's own, else prewhiten.")


def resolve_standardization(choice, model):
    """--standardization as given, else the pretrained model's own (by name) or the one an exported
    .onnx file records, else prewhiten."""
    from facenet_tf2 import pretrained, runtimes  # pylint: disable=import-outside-toplevel
    return choice or pretrained.standardization(model) or runtimes.recorded_standardization(model) or 'prewhiten'


def add_face_image_arguments(parser, is_aligned=True, image_size_help='Image size (height, width) in pixels.'):
    """--is_aligned (default `is_aligned`), --image_size (unless image_size_help is None) and --margin:
    how the tools that take aligned thumbnails or photos read face images."""
    parser.add_argument('--is_aligned', type=str2bool, default=is_aligned,
                        help='Are the images aligned face thumbnails (True) or photos to align on the fly (False)? '
                             f'Default {is_aligned}.')
    if image_size_help is not None:
        parser.add_argument('--image_size', type=positive_int, default=160, help=image_size_help)
    parser.add_argument('--margin', type=int, default=44,
                        help='For photos: margin for the crop around the bounding box (height, width) in pixels.')
