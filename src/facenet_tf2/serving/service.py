"""What the HTTP service serves: one loaded model and MTCNN, and a gallery kept on disk.

`FaceService.detect(images)` and `FaceService.embed(found)` are the batch functions of the
service's two DynamicBatchers: one detector pass over every photo of a batch, then one model call
over every face found in a batch of photos; `analyse` does both. `GalleryStore` holds
the gallery index (facenet_tf2.gallery's format, identify.py's files): every change is saved
atomically before it is reported done, searches and changes are serialised by one lock so no
search sees a half-applied change, and a read-only replica reloads the file when the writer
replaces it.
"""
import os
import threading

import numpy as np

from facenet_tf2.errors import PathError
from facenet_tf2.faces import create_detector, detect_faces, embed_crops
from facenet_tf2.gallery import Gallery, ModelIdentity


class FaceService:
    """A model and MTCNN, loaded once: `analyse` turns photos into faces with embeddings."""

    def __init__(self, model, networks, standardization, image_size=160, margin=44, threshold=1.1,
                 model_name=None):
        self.model = model
        self.networks = networks
        self.standardization = standardization
        self.image_size = image_size
        self.margin = margin
        self.threshold = float(threshold)
        self.model_name = model_name or os.path.basename(os.path.normpath(str(model.source)))

    @classmethod
    def load(cls, model, precision='float32', standardization=None, margin=44, threshold=1.1):
        # Here, not at the top: the app module stays importable (and its docs buildable) without TensorFlow work.
        from facenet_tf2.arguments import resolve_standardization  # pylint: disable=import-outside-toplevel
        from facenet_tf2.model_io import load_model  # pylint: disable=import-outside-toplevel
        embedding_model = load_model(os.path.expanduser(str(model)), precision=precision)
        standardization = standardization or embedding_model.standardization or \
            resolve_standardization(None, str(model))
        return cls(embedding_model, create_detector(), standardization, embedding_model.image_size or 160, margin,
                   threshold, model_name=str(model))

    def identity(self):
        return ModelIdentity.of(self.model, self.image_size, self.standardization)

    def analyse(self, images):
        """Per RGB uint8 photo, its faces (facenet_tf2.faces.Face, MTCNN's order) with the embedding of
        each: a list of (Face, float32 [D]) per photo. The two stages, `detect` and `embed`, are
        also the service's two batch functions (the app pipelines them)."""
        return self.embed(self.detect(images))

    def detect(self, images):
        """Per RGB uint8 photo, the faces MTCNN finds in it (one detector pass over all of them)."""
        return detect_faces(images, self.networks, self.margin, self.image_size)

    def embed(self, found):
        """Per photo's list of faces (what `detect` gave, from one or several of its calls), those
        faces with their embeddings, in one model call over every face."""
        crops = [face.crop for faces in found for face in faces]
        embeddings = embed_crops(self.model, np.stack(crops), self.standardization) if crops else \
            np.zeros((0, self.model.embedding_size), np.float32)
        results, start = [], 0
        for faces in found:
            results.append(list(zip(faces, embeddings[start:start + len(faces)])))
            start += len(faces)
        return results


class GalleryStore:
    """The gallery index at `path`, created empty for `model_identity` if missing, checked against it
    otherwise. read_only: changes are refused and the file is reloaded when another process (the
    one writer) replaces it."""

    def __init__(self, path, model_identity, read_only=False):
        self.path = os.path.abspath(os.path.expanduser(str(path)))
        self.read_only = read_only
        self._lock = threading.Lock()
        self._stamp = None
        if os.path.exists(self.path):
            self.gallery = Gallery.load(self.path)
            self.gallery.check_model(model_identity, self.path)
            self._stamp = self._file_stamp()
        elif read_only:
            raise PathError(self.path, 'no such gallery index; a read-only replica serves the index its writer made')
        else:
            self.gallery = Gallery(model_identity)
            self._save(self.gallery)
        self.model_identity = model_identity

    def _file_stamp(self):
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return None
        return status.st_mtime_ns, status.st_size, status.st_ino

    def _save(self, gallery):
        gallery.save(self.path)
        self._stamp = self._file_stamp()

    def _refresh(self):
        """A replica picks up the writer's latest file (atomically replaced, so it is whole)."""
        if self.read_only:
            stamp = self._file_stamp()
            if stamp is not None and stamp != self._stamp:
                gallery = Gallery.load(self.path)
                gallery.check_model(self.model_identity, self.path)
                self.gallery, self._stamp = gallery, stamp

    def _check_writable(self):
        if self.read_only:
            raise PermissionError('this server is a read-only replica; send changes to the writer')

    def add(self, name, keys, embeddings):
        """Enrols the embeddings (one per key: the key names the image, and a key already enrolled is
        skipped) under `name`; saved to disk before it returns. Returns the number of rows added."""
        self._check_writable()
        with self._lock:
            updated = self._copy()
            added = updated.add([name] * len(keys), list(keys), embeddings)
            if added:
                self._save(updated)  # a failed save leaves the served gallery as it was
                self.gallery = updated
            return added

    def remove(self, name):
        self._check_writable()
        with self._lock:
            if name not in self.gallery.names:
                raise KeyError(name)
            updated = self._copy()
            removed = updated.remove([name])
            self._save(updated)
            self.gallery = updated
            return removed

    def _copy(self):
        gallery = self.gallery
        return Gallery(gallery.model, gallery.names, gallery.labels, gallery.paths, gallery.embeddings)

    def search(self, embeddings, k, threshold):
        """SearchResults of gallery.search, or None for each probe when the gallery is empty."""
        with self._lock:
            self._refresh()
            gallery = self.gallery
            if not len(gallery):
                return [None] * len(embeddings)
            return gallery.search(embeddings, k, threshold)

    def people(self):
        with self._lock:
            self._refresh()
            counts = np.bincount(self.gallery.labels, minlength=len(self.gallery.names))
            return dict(zip(self.gallery.names, (int(count) for count in counts)))

    def size(self):
        with self._lock:
            return len(self.gallery.identities), len(self.gallery)

    def flush(self):
        """Saves the gallery if the file on disk is not the served one (every change is saved as it is
        made; this covers a file removed or replaced behind a writer's back)."""
        if self.read_only:
            return
        with self._lock:
            if self._file_stamp() != self._stamp:
                self._save(self.gallery)

