"""Identification against a gallery of people: an index file of embeddings, and nearest-identity search.

A `Gallery` holds one row per enrolled face image: the identity's name, the image it came from and
its embedding, plus a `ModelIdentity` naming the model that made the embeddings. People are added
and removed row-wise, so growing a gallery embeds only the new images. `Gallery.save` writes one
.npz file atomically; `Gallery.load` checks it and `check_model` refuses a model other than the one
the index was built with (another embedding size, or other embeddings of a fixed probe image).

Search ranks identities by the Euclidean distance from the probe to their nearest image (the
distance compare.py prints). The exact search is one matrix product per block of probes; with
backend='faiss' (the optional faiss-cpu package) a FAISS index does it: exact inner-product search
for small galleries, an inverted-file index (IVF) for large ones. Open-set identification: a probe
whose nearest identity lies beyond the threshold is unknown; `threshold_from_validation` reads the
threshold from a validate_on_lfw.py --json result.
"""
import functools
import json
import os
import zipfile
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

from facenet_tf2.errors import FaissMissing, UserError
from facenet_tf2.files import atomic_path
from facenet_tf2.errors import PathError

FORMAT = 'facenet-tf2 gallery index'
FORMAT_VERSION = 1

# Embeddings of the fixed probe image by two runs of one model differ by float noise (bfloat16
# inference: ~1e-2); those of two different models are unrelated (distance ~1.4).
FINGERPRINT_TOLERANCE = 0.1

# Multiply-adds of a search for which BLAS is held to one thread (below the range it uses one anyway).
MULTI_THREAD_WORK = (1 << 20, 64 << 20)

# Galleries from this size on get a FAISS IVF index; below it a flat one (exact) is fast enough.
FAISS_IVF_MIN_SIZE = 50_000


def fingerprint_image(image_size):
    """The fixed probe image whose embedding identifies a model: a seeded smooth colour pattern
    (uint8 [S, S, 3]), the same on every machine."""
    y, x = np.mgrid[0:image_size, 0:image_size] / max(image_size - 1, 1)
    channels = [np.sin(3 * x + 2 * y), np.cos(5 * x * y + 1), np.sin(7 * y - 4 * x)]
    return np.round(127.5 + 120 * np.stack(channels, axis=-1)).astype(np.uint8)


@dataclass
class ModelIdentity:
    """What an index records of its model: where it was loaded from, embedding size, input
    side, standardisation, and the embedding of fingerprint_image (its fingerprint)."""
    source: str
    embedding_size: int
    image_size: int
    standardization: str
    fingerprint: np.ndarray

    @classmethod
    def of(cls, model, image_size, standardization):
        # Here, not at the top: faces needs TensorFlow and MTCNN, searching an index does not.
        from facenet_tf2.faces import standardize  # pylint: disable=import-outside-toplevel
        probe = standardize(fingerprint_image(image_size)[np.newaxis], standardization)
        return cls(str(model.source), model.embedding_size, image_size, standardization,
                   np.asarray(model(probe))[0].astype(np.float32))

    def describe(self):
        return f'{os.path.basename(os.path.normpath(self.source))} ({self.embedding_size}-d embeddings)'

    def mismatch(self, other):
        """Why embeddings of `other` cannot be searched against ours, or None when they can."""
        if other.embedding_size != self.embedding_size:
            return f'{other.describe()} gives {other.embedding_size}-d embeddings, the index holds ' \
                   f'{self.embedding_size}-d ones of {self.describe()}'
        if (other.image_size, other.standardization) != (self.image_size, self.standardization):
            return f'the index was built with {self.image_size}px {self.standardization} images, not ' \
                   f'{other.image_size}px {other.standardization}'
        distance = float(np.linalg.norm(other.fingerprint - self.fingerprint))
        if distance > FINGERPRINT_TOLERANCE:
            return f'{other.describe()} is not the model the index was built with ({self.describe()}): ' \
                   f'their embeddings of the fingerprint image are {distance:.2f} apart'
        return None


@dataclass
class Match:
    name: str
    distance: float
    image: str  # the gallery image of that identity nearest to the probe


@dataclass
class SearchResult:
    """The top identities for one probe, nearest first; `identity` is the best one, or None when it
    lies beyond the threshold (an unknown person)."""
    matches: list
    threshold: float = None

    @property
    def accepted(self):
        return bool(self.matches) and (self.threshold is None or self.matches[0].distance <= self.threshold)

    @property
    def identity(self):
        return self.matches[0].name if self.accepted else None


class Gallery:
    """Rows: names[labels[i]] is the identity of embeddings[i], which came from paths[i]."""

    def __init__(self, model_identity, names=(), labels=(), paths=(), embeddings=None):
        self.model = model_identity
        self.names = list(names)
        self.labels = np.asarray(labels, np.int64)
        self.paths = list(paths)
        self.embeddings = (np.zeros((0, model_identity.embedding_size), np.float32) if embeddings is None
                           else np.ascontiguousarray(embeddings, np.float32))
        self._searcher = None

    def __len__(self):
        return len(self.paths)

    @property
    def identities(self):
        """The people enrolled, in enrolment order (each has at least one image: remove() drops a
        name with its images)."""
        return list(self.names)

    def add(self, names, paths, embeddings):
        """Adds rows (one name and path per embedding); rows whose path is already enrolled are
        skipped. Returns the number added."""
        embeddings = np.asarray(embeddings, np.float32).reshape(-1, self.model.embedding_size)
        if not len(names) == len(paths) == len(embeddings):
            raise ValueError(f'{len(names)} names, {len(paths)} paths and {len(embeddings)} embeddings')
        known = set(self.paths)
        new = [i for i, path in enumerate(paths) if path not in known]
        index = {name: i for i, name in enumerate(self.names)}
        for i in new:
            index.setdefault(names[i], len(index))
        self.names = sorted(index, key=index.get)
        self.labels = np.concatenate([self.labels, np.array([index[names[i]] for i in new], np.int64)])
        self.paths += [paths[i] for i in new]
        self.embeddings = np.concatenate([self.embeddings, embeddings[new]])
        self._searcher = None
        return len(new)

    def remove(self, names):
        """Removes every image of the named identities; a name that is not enrolled is a ValueError."""
        missing = [name for name in names if name not in self.names]
        if missing:
            raise UserError(f'not in the gallery: {", ".join(missing)}')
        removed = [self.names.index(name) for name in names]
        keep = ~np.isin(self.labels, removed)
        remaining = [name for i, name in enumerate(self.names) if i not in removed]
        relabel = np.array([remaining.index(name) if name in remaining else -1 for name in self.names], np.int64)
        self.names, self.labels = remaining, relabel[self.labels[keep]]
        self.paths = [path for path, k in zip(self.paths, keep) if k]
        self.embeddings = self.embeddings[keep]
        self._searcher = None
        return int(np.sum(~keep))

    def check_model(self, model_identity, filename='gallery'):
        problem = self.model.mismatch(model_identity)
        if problem:
            raise PathError(filename, f'{problem}; search with the index\'s model or build the index again')

    def save(self, filename):
        model = self.model
        with atomic_path(filename) as temporary, open(temporary, 'wb') as f:
            np.savez(f, format=np.array(FORMAT), format_version=np.array(FORMAT_VERSION),
                     names=np.array(self.names, dtype=str), labels=self.labels,
                     paths=np.array(self.paths, dtype=str), embeddings=self.embeddings,
                     model_source=np.array(model.source), model_embedding_size=np.array(model.embedding_size),
                     model_image_size=np.array(model.image_size),
                     model_standardization=np.array(model.standardization), model_fingerprint=model.fingerprint)

    @classmethod
    def load(cls, filename):
        filename = os.path.expanduser(str(filename))
        if not os.path.isfile(filename):
            raise PathError(filename, 'no such index file; build one with `identify.py enroll`')
        try:
            with np.load(filename, allow_pickle=False) as data:
                if str(data['format']) != FORMAT:
                    raise KeyError('format')
                if int(data['format_version']) != FORMAT_VERSION:
                    raise PathError(filename, f'index format version {int(data["format_version"])}, this '
                                              f'version reads {FORMAT_VERSION}; build the index again')
                model = ModelIdentity(str(data['model_source']), int(data['model_embedding_size']),
                                      int(data['model_image_size']), str(data['model_standardization']),
                                      data['model_fingerprint'])
                return cls(model, data['names'].tolist(), data['labels'], data['paths'].tolist(),
                           data['embeddings'])
        except (KeyError, ValueError, OSError, zipfile.BadZipFile) as e:
            if isinstance(e, PathError):
                raise
            raise PathError(filename, 'not a gallery index written by identify.py '
                                      f'({type(e).__name__}: {e}); build one with `identify.py enroll`') from None

    def search(self, probes, k=5, threshold=None, backend='exact', nprobe=None):
        """A SearchResult for each probe embedding: its k nearest identities (each at the distance
        of its nearest image) and, with a threshold, whether the best one is close enough."""
        if not len(self):
            raise UserError('the gallery is empty; enrol people first')
        probes = np.ascontiguousarray(np.asarray(probes, np.float32).reshape(-1, self.model.embedding_size))
        k = min(k, len(self.names))
        # Enough nearest images to hold k distinct identities whatever the order.
        nrof_images = min(len(self), k * int(np.bincount(self.labels).max()))
        if self._searcher is None or self._searcher.backend != backend:
            self._searcher = make_searcher(self.embeddings, backend)
        if nprobe is not None:
            self._searcher.nprobe = nprobe
        rows = self._searcher.nearest(probes, nrof_images)
        results = []
        for probe, probe_rows in zip(probes, rows):
            probe_rows = probe_rows[probe_rows >= 0]  # -1: an IVF search found fewer
            # The distances again, directly: |p|^2 + |g|^2 - 2 p.g loses float32 precision near 0
            # (a probe's own image came out at 3e-4).
            difference = self.embeddings[probe_rows] - probe
            squared = np.einsum('md,md->m', difference, difference)
            matches, seen = [], set()
            for squared_distance, row in zip(squared, probe_rows):
                label = self.labels[row]
                if label in seen:
                    continue
                seen.add(label)
                matches.append(Match(self.names[label], float(np.sqrt(squared_distance)), self.paths[row]))
                if len(matches) == k:
                    break
            results.append(SearchResult(matches, threshold))
        return results


@functools.lru_cache(maxsize=1)
def blas_threads():
    """One ThreadpoolController: making one inspects every loaded library (about 0.3 ms)."""
    return ThreadpoolController()


class ExactSearch:
    """Nearest rows by squared Euclidean distance, ranked by |g|^2 - 2 p.g (|p|^2 is the same for
    every row), one matrix product per block of probes (blocks keep the matrix near 128 MB)."""
    backend = 'exact'
    nprobe = None

    def __init__(self, embeddings):
        self.embeddings = embeddings
        self.squared_norms = np.einsum('ij,ij->i', embeddings, embeddings)

    def nearest(self, probes, m):
        # A few probes are too little work to share among BLAS threads: waking them costs more than
        # it saves, many times more on a busy machine (measured: 8x slower single-probe search).
        work = len(probes) * self.embeddings.size
        if not MULTI_THREAD_WORK[0] <= work < MULTI_THREAD_WORK[1]:  # below: BLAS uses one thread anyway
            return self._nearest(probes, m)
        with blas_threads().limit(limits=1, user_api='blas'):
            return self._nearest(probes, m)

    def _nearest(self, probes, m):
        block = max(1, (32 << 20) // max(len(self.embeddings), 1))
        rows = []
        for start in range(0, len(probes), block):
            chunk = probes[start:start + block]
            ranking = self.squared_norms[np.newaxis] - 2 * (chunk @ self.embeddings.T)
            nearest = np.argpartition(ranking, m - 1, axis=1)[:, :m] if m < ranking.shape[1] else \
                np.broadcast_to(np.arange(ranking.shape[1]), ranking.shape)
            chunk_distances = np.take_along_axis(ranking, nearest, axis=1)
            order = np.argsort(chunk_distances, axis=1)
            rows.append(np.take_along_axis(nearest, order, axis=1))
        return np.concatenate(rows)


def import_faiss():
    try:
        import faiss  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise FaissMissing('FAISS search needs the faiss-cpu package: pip install faiss-cpu '
                           "(or pip install 'facenet-tf2[faiss]')") from None
    return faiss


class FaissSearch:
    """Nearest rows with FAISS, by inner product, which orders L2-normalised embeddings as the
    Euclidean distance does (|p - g|^2 = 2 - 2 p.g): a flat (exact) index, or from
    FAISS_IVF_MIN_SIZE rows an IVF index of sqrt(N) lists, nprobe of them searched (default
    nlist/16). sqrt(N) lists, at the low end of FAISS' advice, keep k-means short on a CPU (about
    15 s to build the index of a million embeddings on a busy 2-core machine)."""
    backend = 'faiss'

    def __init__(self, embeddings):
        faiss = import_faiss()
        dimension = embeddings.shape[1]
        if len(embeddings) < FAISS_IVF_MIN_SIZE:
            self.index = faiss.IndexFlatIP(dimension)
        else:
            nlist = int(np.sqrt(len(embeddings)))
            self.index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, nlist,
                                            faiss.METRIC_INNER_PRODUCT)
            # k-means on a sample (FAISS' own advice: 39 to 256 points per list).
            sample = np.random.default_rng(0).choice(len(embeddings), min(len(embeddings), 64 * nlist), replace=False)
            self.index.train(embeddings[np.sort(sample)])
        self.index.add(embeddings)
        self.nprobe = max(1, getattr(self.index, 'nlist', 16) // 16)

    @property
    def nprobe(self):
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value):
        self._nprobe = value
        if hasattr(self.index, 'nprobe'):
            self.index.nprobe = value

    def nearest(self, probes, m):
        work = len(probes) * self.index.ntotal * self.index.d
        if MULTI_THREAD_WORK[0] <= work < MULTI_THREAD_WORK[1]:  # as ExactSearch
            with blas_threads().limit(limits=1, user_api='openmp'):
                return self.index.search(probes, m)[1]
        return self.index.search(probes, m)[1]  # rows of -1: fewer than m found (an IVF search that visited few lists)


def make_searcher(embeddings, backend='exact'):
    if backend == 'exact':
        return ExactSearch(embeddings)
    if backend == 'faiss':
        return FaissSearch(embeddings)
    raise UserError(f'unknown search backend {backend!r}, use exact or faiss')


def threshold_from_validation(filename, operating_point='accuracy'):
    """(Euclidean distance threshold, per-pair false accept rate the ROC gives there) from a
    validate_on_lfw.py --json result. operating_point 'accuracy': the mean over folds of the
    threshold that maximised accuracy; 'val': the mean threshold at the VAL@FAR target (1e-3).

    validate_on_lfw's distance_metric 0 thresholds squared Euclidean distances and 1 the angle
    over pi; both are converted to the Euclidean distance search reports.
    """
    filename = os.path.expanduser(str(filename))
    try:
        with open(filename, encoding='utf-8') as f:
            result = json.load(f)
        folds, roc = result['folds'], result['roc']
        key = {'accuracy': 'best_threshold', 'val': 'val_threshold'}[operating_point]
        threshold = float(np.mean(folds[key]))
        metric = int(result['distance_metric'])
        order = np.argsort(roc['thresholds'])
        far = float(np.interp(threshold, np.asarray(roc['thresholds'])[order], np.asarray(roc['fpr'])[order]))
    except FileNotFoundError:
        raise PathError(filename, 'no such file; write one with validate_on_lfw.py --json') from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PathError(filename, f'not a validate_on_lfw.py --json result ({type(e).__name__}: {e})') from None
    if result.get('subtract_mean'):
        raise PathError(filename, 'thresholds of an evaluation with --subtract_mean do not apply to single '
                                  'embeddings; validate without it')
    if (result.get('arguments') or {}).get('use_flipped_images'):
        raise PathError(filename, 'thresholds of --use_flipped_images embeddings (image + mirror) do not apply; '
                                  'validate without it')
    if metric == 0:
        return float(np.sqrt(threshold)), far
    return float(np.sqrt(max(0.0, 2 - 2 * np.cos(np.pi * threshold)))), far


def predicted_rejection_rate(pair_far, nrof_comparisons):
    """The fraction of probes of people outside the gallery that the threshold rejects if each of
    nrof_comparisons gallery entries matched such a probe independently with the ROC's per-pair
    false accept rate: (1 - FAR)^n. Images of one person are not independent, so the gallery's
    number of images gives a lower bound on the rejection rate and its number of identities an
    estimate from above."""
    return float((1.0 - pair_far) ** nrof_comparisons)


def folder_images(folder):
    """(names, paths) of the images of a folder-per-identity gallery, one entry per image."""
    from facenet_tf2.dataset import get_dataset, get_image_paths_and_labels  # pylint: disable=import-outside-toplevel
    try:
        dataset = get_dataset(folder)
    except FileNotFoundError:
        raise PathError(folder, 'no such gallery folder') from None
    paths, labels = get_image_paths_and_labels(dataset)
    if not paths:
        raise PathError(folder, 'the gallery is empty: no identity folder with images in it '
                                '(expected one folder of images per person)')
    return [dataset[label].name for label in labels], paths


def embeddings_file_rows(embeddings_file, labels_file=None):
    """(names, paths, embeddings) of an export_embeddings.py / batch_represent.py output: the
    embeddings .npy with the label_strings.npy beside it (or `labels_file`); the path of row i is
    'EMBEDDINGS_FILE#i'."""
    labels_file = labels_file or os.path.join(os.path.dirname(embeddings_file), 'label_strings.npy')
    arrays = []
    for filename in (embeddings_file, labels_file):
        try:
            arrays.append(np.load(filename, allow_pickle=False))
        except FileNotFoundError:
            raise PathError(filename, 'no such file (an embeddings .npy needs the label_strings.npy written '
                                      'beside it, or --labels)') from None
        except (OSError, ValueError) as e:
            raise PathError(filename, f'not a NumPy array file ({e})') from None
    embeddings, names = arrays
    if embeddings.ndim != 2 or len(names) != len(embeddings):
        raise PathError(embeddings_file, f'{embeddings.shape} embeddings for {len(names)} labels in {labels_file}')
    if not len(embeddings):
        raise PathError(embeddings_file, 'the gallery is empty: no embeddings in the file')
    return [str(name) for name in names], [f'{embeddings_file}#{i}' for i in range(len(names))], embeddings
