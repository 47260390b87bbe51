"""facenet-serve: a face recognition HTTP service (FastAPI) and web page on the port's models and galleries.

    from facenet_tf2.serving import FaceService, GalleryStore, Settings, create_app
    service = FaceService.load('20180402-114759')
    app = create_app(service, GalleryStore('people.npz', service.identity()), Settings(open_enrollment=True))

See app (the endpoints and access rules), batcher (dynamic batching) and service (model and gallery).
The names load on first use: the command checks its flags (app.Settings) before TensorFlow is imported.
"""
import importlib

_EXPORTS = {'Settings': 'app', 'create_app': 'app', 'FaceService': 'service', 'GalleryStore': 'service'}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(f'{__name__}.{_EXPORTS[name]}'), name)
