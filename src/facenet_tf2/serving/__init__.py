"""facenet-serve: a face recognition HTTP service (FastAPI) and web page on the port's models and galleries.

    from facenet_tf2.serving import FaceService, GalleryStore, Settings, create_app
    service = FaceService.load('20180402-114759')
    app = create_app(service, GalleryStore('people.npz', service.identity()), Settings(open_enrollment=True))

See app (the endpoints and access rules), batcher (dynamic batching) and service (model and gallery).
"""
from facenet_tf2.serving.app import Settings, create_app
from facenet_tf2.serving.service import FaceService, GalleryStore

__all__ = ['FaceService', 'GalleryStore', 'Settings', 'create_app']
