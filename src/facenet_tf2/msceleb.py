"""MS-Celeb-1M TSV files to identity folders (the original's decode_msceleb_dataset.py).

A record is one line of TAB-separated columns: Freebase MID, query/name, image search rank, image
URL, page URL, base64 image data (column 6). The image goes to `<output_dir>/<MID>/<name>-<page
URL>.<format>` ('/' in the name replaced by '_'), optionally resized to size x size (PIL bilinear
on the uint8 image, as the original's imresize did). A line that cannot be used (too few columns,
bad base64, no image, an unsafe folder name) is counted and reported, never fatal.
"""
import base64
import binascii
import io
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from facenet_tf2.files import atomic_path


@dataclass
class DecodeSummary:
    written: int = 0
    bad_lines: list = field(default_factory=list)  # (file, line number, problem)

    def report(self, shown=10):
        lines = [f'{self.written} images written, {len(self.bad_lines)} bad lines skipped']
        lines += [f'  {name}:{number}: {problem}' for name, number, problem in self.bad_lines[:shown]]
        if len(self.bad_lines) > shown:
            lines.append(f'  ... and {len(self.bad_lines) - shown} more')
        return '\n'.join(lines)


def decode_record(line, size=None):
    """(class folder, file name stem, RGB uint8 image) of one TSV line; ValueError says what is wrong."""
    fields = line.rstrip('\r\n').split('\t')
    if len(fields) < 6:
        raise ValueError(f'{len(fields)} columns, expected 6 (MID, name, rank, image URL, page URL, base64 image)')
    class_dir = fields[0]
    if not class_dir or class_dir in ('.', '..') or '/' in class_dir or '\\' in class_dir:
        raise ValueError(f'unusable identity folder name {class_dir[:40]!r}')
    try:
        data = base64.b64decode(fields[5], validate=False)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f'bad base64 image data ({e})') from None
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image = np.asarray(image.convert('RGB'))
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f'column 6 is no image ({e})') from None
    if size:
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
    return class_dir, (fields[1] + '-' + fields[4]).replace('/', '_'), image


def decode_tsv_files(tsv_files, output_dir, size=None, output_format='png', progress=print):
    """Decodes every record of the TSV files into output_dir; returns a DecodeSummary."""
    summary = DecodeSummary()
    pil_format = {'png': 'PNG', 'jpg': 'JPEG'}[output_format]
    for filename in tsv_files:
        with open(filename, 'r', encoding='utf-8', errors='replace', newline='\n') as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    class_dir, stem, image = decode_record(line, size)
                except ValueError as e:
                    summary.bad_lines.append((filename, number, str(e)))
                    continue
                full_path = os.path.join(output_dir, class_dir, f'{stem}.{output_format}')
                os.makedirs(os.path.dirname(full_path), exist_ok=True)
                with atomic_path(full_path) as temporary:
                    Image.fromarray(image).save(temporary, format=pil_format)
                progress('%8d: %s' % (summary.written, full_path))
                summary.written += 1
    return summary
