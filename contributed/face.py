# coding=utf-8
"""Face detection and recognition in a few lines: the original contributed/face.py on TF2.

A high-level container around MTCNN alignment, a facenet model and a classifier trained with
src/classifier.py (the original's by François Gervais, after David Sandberg and shanren7):

    import face                                      # with contributed/ on sys.path
    recognition = face.Recognition(model='~/models/20170512-110547', classifier_model='my_classifier.pkl')
    for f in recognition.identify(rgb_image):        # RGB uint8 [H, W, 3]
        print(f.name, f.bounding_box)

`Detection` finds and crops faces (Face.image: the aligned RGB uint8 crop), `Encoder` embeds a
face, `Identifier` names an embedding with the classifier pickle, `Recognition` chains them.
The model and classifier paths are arguments now; left out, the module-level settings
(`face.facenet_model_checkpoint`, `face.classifier_model`, `face.gpu_memory_fraction`) are read
when the object is built, as the original read them, so a program may set them after the import.
`classifier_model=False` builds a Recognition without an Identifier. The original's `debug` windows (cv2.imshow) are gone: the headless
OpenCV has no windows.
"""
import os

import numpy as np

import facenet
from facenet_tf2.detection.aligner import FACTOR, MINSIZE, THRESHOLD
from facenet_tf2.classifiers import check_embedding_size, classify, load_classifier
from facenet_tf2.faces import create_detector, find_faces
from facenet_tf2.images import STANDARDIZATIONS

gpu_memory_fraction = 0.3
facenet_model_checkpoint = os.path.dirname(__file__) + '/../model_checkpoints/20170512-110547'
classifier_model = os.path.dirname(__file__) + '/../model_checkpoints/my_classifier_1.pkl'


def _setting(value, name):
    """value, or the module-level setting `name` as it is now (None: not given)."""
    return globals()[name] if value is None else value


class Face:
    def __init__(self):
        self.name = None
        self.bounding_box = None
        self.image = None
        self.container_image = None
        self.embedding = None


class Recognition:
    def __init__(self, model=None, classifier_model=None,  # pylint: disable=redefined-outer-name
                 standardization='prewhiten', face_crop_size=160, face_crop_margin=32):
        classifier_model = _setting(classifier_model, 'classifier_model')
        # The classifier first: a bad pickle is reported before the networks are built.
        self.identifier = Identifier(classifier_model) if classifier_model else None
        self.detect = Detection(face_crop_size, face_crop_margin)
        self.encoder = Encoder(model, standardization)
        if self.identifier:
            check_embedding_size(self.identifier.model, self.encoder.model.embedding_size, classifier_model)

    def add_identity(self, image, person_name):
        """The face of an image showing exactly one face, named and embedded (None otherwise)."""
        faces = self.detect.find_faces(image)
        if len(faces) == 1:
            face = faces[0]
            face.name = person_name
            face.embedding = self.encoder.generate_embedding(face)
            return faces
        return None

    def identify(self, image):
        faces = self.detect.find_faces(image)
        for face in faces:
            face.embedding = self.encoder.generate_embedding(face)
            face.name = self.identifier.identify(face) if self.identifier else None
        return faces


class Identifier:
    def __init__(self, classifier_model=None):  # pylint: disable=redefined-outer-name
        self.model, self.class_names = load_classifier(_setting(classifier_model, 'classifier_model'))

    def identify(self, face):
        if face.embedding is not None:
            best_class, _ = classify(self.model, [face.embedding])
            return self.class_names[best_class[0]]
        return None


class Encoder:
    def __init__(self, model=None, standardization='prewhiten'):
        self.model = facenet.load_model(os.path.expanduser(_setting(model, 'facenet_model_checkpoint')))
        self.standardize = STANDARDIZATIONS[standardization]

    def generate_embedding(self, face):
        return np.asarray(self.model(self.standardize(face.image)[np.newaxis].astype(np.float32)))[0]


class Detection:
    # face detection parameters of the original align script
    minsize = MINSIZE
    threshold = THRESHOLD
    factor = FACTOR

    def __init__(self, face_crop_size=160, face_crop_margin=32):
        self.pnet, self.rnet, self.onet = create_detector(_setting(None, 'gpu_memory_fraction'))
        self.face_crop_size = face_crop_size
        self.face_crop_margin = face_crop_margin

    def find_faces(self, image):
        """Every face MTCNN finds in an RGB uint8 image, cropped with the margin and resized."""
        faces = []
        for crop, box, _ in find_faces([image], (self.pnet, self.rnet, self.onet), self.face_crop_margin,
                                       self.face_crop_size)[0]:
            face = Face()
            face.container_image = image
            face.bounding_box = box
            face.image = crop
            faces.append(face)
        return faces
