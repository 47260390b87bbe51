"""Speed of the vectorised select_triplets against the original's loops, same run, same inputs.

The original's default sample: people_per_batch 45 x images_per_person 40 = 1,800 L2-normalised
128-d embeddings in float64, alpha 0.2. Two kinds of embeddings: uniformly random on the sphere
(nearly every other-class image is a candidate, the most work for the random choice), and
clustered like a trained model's (identity centres plus noise: candidate sets of a few percent).
Both implementations get the same RandomState seed and must return identical triplets. Prints
medians of --repeats runs each.

    python benchmarks/bench_triplet_selection.py --repeats 5
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / 'src'))
sys.path.insert(0, str(REPO_ROOT / 'benchmarks'))

from facenet_tf2.training.triplets import select_triplets  # noqa: E402 pylint: disable=wrong-import-position
from original_triplet_selection import original_select_triplets  # noqa: E402 pylint: disable=wrong-import-position


def normalised(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def sample_embeddings(kind, people, images, dim, rng):
    if kind == 'random':
        return normalised(rng.standard_normal((people * images, dim)))
    centres = normalised(rng.standard_normal((people, dim)))
    return normalised(np.repeat(centres, images, 0) + 0.09 * rng.standard_normal((people * images, dim)))


def timed(function, repeats):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--people_per_batch', type=int, default=45)
    parser.add_argument('--images_per_person', type=int, default=40)
    parser.add_argument('--embedding_size', type=int, default=128)
    parser.add_argument('--alpha', type=float, default=0.2)
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args(argv)
    people, images = args.people_per_batch, args.images_per_person
    sizes = [images] * people
    paths = [f'image{i}' for i in range(people * images)]
    print(f'{people} x {images} = {people * images} embeddings of {args.embedding_size} dims, alpha {args.alpha}, '
          f'median of {args.repeats} runs')
    for kind in ('random', 'clustered'):
        emb = sample_embeddings(kind, people, images, args.embedding_size, np.random.default_rng(0))

        def original():
            return original_select_triplets(emb, sizes, paths, people, args.alpha, np.random.RandomState(1))

        def vectorised():
            return select_triplets(emb, sizes, paths, people, args.alpha, np.random.RandomState(1))

        original_s, original_result = timed(original, args.repeats)
        vectorised_s, vectorised_result = timed(vectorised, args.repeats)
        if original_result != vectorised_result:
            print(f'{kind}: the two implementations DISAGREE')
            return 1
        print(f'{kind:9s}: {original_result[1]} pairs, {original_result[2]} triplets; original loops {original_s:.3f} s, '
              f'vectorised {vectorised_s * 1000:.1f} ms ({original_s / vectorised_s:.0f}x), identical triplets')
    return 0


if __name__ == '__main__':
    sys.exit(main())
