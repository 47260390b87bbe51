"""Small bad and unusual image files, written on the fly (nothing binary is kept in the repo)."""
import io

import numpy as np
from PIL import Image


def make_rgb(height=40, width=50, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_bad_and_odd_images(folder, seed=0):
    """Writes one file of each awkward kind into `folder`; returns {kind: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = make_rgb(seed=seed)
    paths = {}

    def path(name):
        paths[name.split('.')[0]] = folder / name
        return folder / name

    Image.fromarray(rgb).save(path('good.png'))
    jpeg = io.BytesIO()
    Image.fromarray(rgb).save(jpeg, format='JPEG', quality=95)
    path('truncated.jpg').write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    path('text.jpg').write_text('this is not an image\n')
    path('empty.png').write_bytes(b'')
    gray16 = (np.arange(40 * 50, dtype=np.uint32).reshape(40, 50) * 32).astype(np.uint16)
    Image.fromarray(gray16).save(path('gray16.png'))
    rgba = np.concatenate([rgb, np.full((40, 50, 1), 7, np.uint8)], axis=2)
    Image.fromarray(rgba, 'RGBA').save(path('rgba.png'))
    Image.fromarray(rgb[:, :, 0], 'L').save(path('gray.pgm'))
    return paths, rgb
