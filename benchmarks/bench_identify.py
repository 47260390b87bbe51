"""Identification speed against gallery size: exact search (one matrix product) and FAISS.

For each gallery size (1e3 to 1e6 synthetic L2-normalised 128-d embeddings, one image per identity)
it measures, in one run with the repetitions interleaved (exact, FAISS, exact, FAISS, ...) because
the machine may be shared, the medians of:
- probes per second, top-5 identities per probe, probes searched in one batch (batch mode) and one
  at a time (single-image mode, fewer repetitions);
- FAISS index build time (a flat index below 50,000 images, IVF with sqrt(N) lists above);
- FAISS recall: how often its top-1 is the exact search's top-1 (probes are gallery embeddings
  plus noise, so the right answer is known);
- memory per identity: the gallery in RAM (embedding, label, path string), the index file on disk
  and the FAISS index (serialised).

    python benchmarks/bench_identify.py                        # 1e3, 1e4, 1e5, 1e6
    python benchmarks/bench_identify.py --sizes 1000 100000 --probes 500 --json bench_identify.json
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

from facenet_tf2.gallery import Gallery, ModelIdentity, import_faiss


def synthetic_gallery(size, dimension, rng):
    embeddings = rng.standard_normal((size, dimension), dtype=np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    names = [f'person_{i:07d}' for i in range(size)]
    paths = [f'/data/gallery/{name}/{name}_0001.png' for name in names]
    gallery = Gallery(ModelIdentity('synthetic', dimension, 160, 'prewhiten', np.zeros(dimension, np.float32)))
    gallery.add(names, paths, embeddings)
    return gallery


def probes_near(gallery, count, rng, noise=0.02):
    rows = rng.choice(len(gallery), count, replace=False)
    probes = gallery.embeddings[rows] + rng.normal(scale=noise, size=(count, gallery.embeddings.shape[1]))
    return (probes / np.linalg.norm(probes, axis=1, keepdims=True)).astype(np.float32), rows


def memory_per_identity(gallery):
    in_ram = (gallery.embeddings.nbytes + gallery.labels.nbytes
              + sum(sys.getsizeof(path) + 8 for path in gallery.paths)
              + sum(sys.getsizeof(name) + 8 for name in gallery.names))
    with tempfile.TemporaryDirectory() as folder:
        filename = os.path.join(folder, 'gallery.npz')
        gallery.save(filename)
        on_disk = os.path.getsize(filename)
    return in_ram / len(gallery), on_disk / len(gallery)


def probes_per_second(gallery, probes, backend, single):
    start = time.perf_counter()
    if single:
        for probe in probes:
            gallery.search(probe[np.newaxis], 5, backend=backend)
    else:
        gallery.search(probes, 5, backend=backend)
    return len(probes) / (time.perf_counter() - start)


def bench_size(size, args, faiss):
    rng = np.random.default_rng(size)
    gallery = synthetic_gallery(size, 128, rng)
    probes, truth = probes_near(gallery, args.probes, rng)
    backends = ['exact'] + (['faiss'] if faiss else [])
    result = {'size': size}
    result['ram_bytes_per_identity'], result['file_bytes_per_identity'] = memory_per_identity(gallery)
    if faiss:
        start = time.perf_counter()
        gallery.search(probes[:1], 1, backend='faiss')  # builds the index
        result['faiss_build_seconds'] = time.perf_counter() - start
        index = gallery._searcher.index  # pylint: disable=protected-access
        result['faiss_index'] = type(index).__name__
        result['faiss_bytes_per_identity'] = len(faiss.serialize_index(index)) / size
    # One searcher is cached per gallery: keep one gallery per backend so none is rebuilt in the loop.
    galleries = {backend: gallery if backend == 'faiss' else synthetic_gallery_view(gallery) for backend in backends}
    for mode, repeats, count in (('batch', args.repeats, len(probes)),
                                 ('single', max(1, args.repeats // 2), min(len(probes), args.single_probes))):
        samples = {backend: [] for backend in backends}
        for _ in range(repeats):
            for backend in backends:
                samples[backend].append(probes_per_second(galleries[backend], probes[:count], backend,
                                                          mode == 'single'))
        for backend in backends:
            result[f'{backend}_{mode}_probes_per_second'] = statistics.median(samples[backend])
    exact = [r.matches[0].name for r in galleries['exact'].search(probes, 1)]
    result['exact_top1_is_source'] = float(np.mean([name == gallery.names[row] for name, row in zip(exact, truth)]))
    if faiss:
        found = [r.matches[0].name for r in gallery.search(probes, 1, backend='faiss')]
        result['faiss_recall_at_1'] = float(np.mean([a == b for a, b in zip(found, exact)]))
    return result


def synthetic_gallery_view(gallery):
    """A second Gallery over the same arrays (its own searcher cache)."""
    return Gallery(gallery.model, gallery.names, gallery.labels, gallery.paths, gallery.embeddings)


def main(args):
    try:
        faiss = import_faiss()
    except ImportError as e:
        print(f'{e}; measuring exact search only')
        faiss = None
    results = []
    print('| gallery | exact, batch | exact, single | FAISS, batch | FAISS, single | FAISS index (build s, recall@1) '
          '| RAM / file / FAISS bytes per identity |')
    print('|---|---|---|---|---|---|---|')
    for size in args.sizes:
        r = bench_size(size, args, faiss)
        results.append(r)
        faiss_cells = (f"{r['faiss_batch_probes_per_second']:,.0f} | {r['faiss_single_probes_per_second']:,.0f} | "
                       f"{r['faiss_index']} ({r['faiss_build_seconds']:.1f} s, {r['faiss_recall_at_1']:.3f})"
                       if faiss else '— | — | —')
        print(f"| {size:,} | {r['exact_batch_probes_per_second']:,.0f} | {r['exact_single_probes_per_second']:,.0f} | "
              f"{faiss_cells} | {r['ram_bytes_per_identity']:.0f} / {r['file_bytes_per_identity']:.0f} / "
              f"{r.get('faiss_bytes_per_identity', float('nan')):.0f} |", flush=True)
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump({'arguments': vars(args), 'results': results}, f, indent=1)
    return results


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[1_000, 10_000, 100_000, 1_000_000],
                        help='Gallery sizes (images, one per identity).')
    parser.add_argument('--probes', type=int, default=1000, help='Probes per batch-mode search.')
    parser.add_argument('--single_probes', type=int, default=50, help='Probes searched one at a time.')
    parser.add_argument('--repeats', type=int, default=5, help='Repetitions (medians are reported).')
    parser.add_argument('--json', type=str, help='Write every figure to this JSON file.')
    return parser.parse_args(argv)


if __name__ == '__main__':
    main(parse_arguments(sys.argv[1:]))
