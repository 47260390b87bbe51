"""Small bad and unusual image files, written on the fly (nothing binary is kept in the repo)."""
import io
from pathlib import Path

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


def write_identity_folders(folder, nrof_people=4, images_per_person=4, size=28, seed=0):
    """Generated identities, one folder each (Person_00/Person_00_0001.png, ...): every person is
    a smooth random colour pattern of their own over one that all share (people look alike, as
    faces do), every image of them that pattern shifted by a few pixels, brightened or darkened and
    with pixel noise. A network learns to tell them apart, not at once, and no shared data is
    needed. Returns the folder."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    big = size + 8

    def smooth_pattern():
        coarse = rng.uniform(0, 255, (4, 4, 3)).astype(np.uint8)
        return np.asarray(Image.fromarray(coarse).resize((big, big), Image.BICUBIC), np.float32)

    common = smooth_pattern()
    for person in range(nrof_people):
        pattern = 0.6 * common + 0.4 * smooth_pattern()
        (folder / f'Person_{person:02d}').mkdir(parents=True, exist_ok=True)
        for index in range(images_per_person):
            dy, dx = rng.integers(0, 9, 2)
            image = pattern[dy:dy + size, dx:dx + size] * rng.uniform(0.8, 1.2) + rng.normal(0, 16, (size, size, 3))
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
                folder / f'Person_{person:02d}' / f'Person_{person:02d}_{index + 1:04d}.png')
    return folder
