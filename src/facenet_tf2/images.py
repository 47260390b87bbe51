"""Reading images and the original's NumPy image helpers (prewhiten, crop, flip, load_data, ...).

Every part of the project reads images through `read_image`, so alignment, evaluation and training
see the same pixels: Pillow's decoder (what SciPy's old `misc.imread` and imageio used), RGB uint8 HxWx3.
"""
import io
import os

import numpy as np
from PIL import Image

from facenet_tf2.errors import ImageReadError

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.pgm', '.ppm', '.pbm', '.pnm', '.gif', '.tif', '.tiff', '.webp')


def is_image_file(path):
    name = os.path.basename(path)
    return not name.startswith('.') and name.lower().endswith(IMAGE_EXTENSIONS)


def read_image(path):
    """Decodes an image file to RGB uint8 [H, W, 3].

    Grayscale is replicated to three channels, alpha is dropped (as TF's decode_image does),
    16-bit images are scaled to 8 bits. Raises ImageReadError naming the file for anything that
    is missing, empty, truncated or not an image.
    """
    try:
        with Image.open(path) as img:
            img.load()
            return _to_rgb_uint8(img)
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(path, 'no such file') from None
    except Image.DecompressionBombError as e:
        raise ImageReadError(path, f'image too large ({e})') from None
    except (OSError, SyntaxError, ValueError) as e:
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            raise ImageReadError(path, 'empty file (0 bytes)') from None
        raise ImageReadError(path, f'not a readable image ({e})') from None


def decode_image(data, name, max_pixels=None):
    """Decodes the bytes of an image file (an upload) to RGB uint8 [H, W, 3], as read_image does.

    max_pixels: refuse an image of more pixels from its header, before any pixel is decoded (a
    decompression bomb: a small file of a huge image). Raises ImageReadError naming `name` for
    empty, truncated, oversized or non-image data.
    """
    if not data:
        raise ImageReadError(name, 'empty file (0 bytes)')
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageReadError(name, f'image too large: {width}x{height} pixels, at most {max_pixels:,} '
                                           'are decoded; send a smaller image')
            img.load()
            return _to_rgb_uint8(img)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageReadError(name, f'image too large ({e})') from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(name, f'not a readable image ({e})') from None


def _to_rgb_uint8(img):
    if img.mode in ('RGB', 'L'):
        array = np.asarray(img)
    elif img.mode in ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I'):
        # 16-bit (or 32-bit integer) grayscale: map the full range onto 0..255 by the top byte.
        wide = np.asarray(img).astype(np.int64)
        maximum = 65535 if img.mode.startswith('I;16') or wide.max(initial=0) > 255 else 255
        array = np.clip(np.round(wide * (255.0 / maximum)), 0, 255).astype(np.uint8)
    elif img.mode == 'F':
        array = np.clip(np.round(np.asarray(img)), 0, 255).astype(np.uint8)
    elif img.mode == '1':
        array = np.asarray(img.convert('L'))
    else:
        # P, PA, LA, RGBA, RGBX, CMYK, YCbCr, ...: Pillow's conversion drops alpha.
        array = np.asarray(img.convert('RGB'))
    if array.ndim == 2:
        array = to_rgb(array)
    if array.ndim != 3 or array.shape[2] != 3 or array.size == 0:
        raise ImageReadError(getattr(img, 'filename', '?'), f'unsupported image layout {array.shape}')
    return np.ascontiguousarray(array, dtype=np.uint8)


def to_rgb(img):
    """Grayscale [H, W] to RGB [H, W, 3] by replicating the channel."""
    return np.repeat(img[:, :, np.newaxis], 3, axis=2).astype(np.uint8, copy=False)


def prewhiten(x):
    """Per-image standardisation, identical to tf.image.per_image_standardization."""
    x = np.asarray(x, dtype=np.float64)
    std_adj = np.maximum(np.std(x), 1.0 / np.sqrt(x.size))
    return (x - np.mean(x)) / std_adj


def fixed_image_standardization(x):
    """The 2018 models' input scaling: (x - 127.5) / 128."""
    return (np.asarray(x, dtype=np.float32) - 127.5) / 128.0


# The standardisations models were trained with: 'prewhiten' (per-image, the original's,
# 20170512-110547) and 'fixed' ((x - 127.5) / 128, 20180402-114759).
STANDARDIZATIONS = {'prewhiten': prewhiten, 'fixed': fixed_image_standardization}


def crop(image, random_crop, image_size):
    """Central (or, with random_crop, randomly shifted) image_size square crop.

    The original took both offsets from the width only, which mis-crops non-square images;
    here each axis uses its own size (identical on square images).
    """
    height, width = image.shape[:2]
    if width <= image_size and height <= image_size:
        return image
    top, left = max(0, (height - image_size) // 2), max(0, (width - image_size) // 2)
    if random_crop:
        top += np.random.randint(-top, top + 1)
        left += np.random.randint(-left, left + 1)
    return image[top:top + image_size, left:left + image_size, :]


def flip(image, random_flip):
    if random_flip and np.random.choice([True, False]):
        image = np.fliplr(image)
    return image


def load_data(image_paths, do_random_crop, do_random_flip, image_size, do_prewhiten=True):
    """Loads images into a float array [N, image_size, image_size, 3] the way the original did:
    prewhiten on the whole image, then crop, then flip."""
    images = np.zeros((len(image_paths), image_size, image_size, 3))
    for i, path in enumerate(image_paths):
        img = read_image(path)
        if do_prewhiten:
            img = prewhiten(img)
        img = crop(img, do_random_crop, image_size)
        img = flip(img, do_random_flip)
        if img.shape[:2] != (image_size, image_size):
            raise ImageReadError(path, f'image is {img.shape[1]}x{img.shape[0]}, smaller than image_size {image_size}')
        images[i] = img
    return images


def put_images_on_grid(images, shape=(16, 8)):
    """Tiles images [N, S, S, 3] into one image with a 3-pixel border, shape[0] across, shape[1] down."""
    nrof_images, img_size = images.shape[0], images.shape[1]
    border = 3
    grid = np.zeros((shape[1] * (img_size + border) + border, shape[0] * (img_size + border) + border, 3), np.float32)
    for index in range(min(nrof_images, shape[0] * shape[1])):
        row, col = divmod(index, shape[0])
        top, left = row * (img_size + border) + border, col * (img_size + border) + border
        grid[top:top + img_size, left:left + img_size, :] = images[index]
    return grid
