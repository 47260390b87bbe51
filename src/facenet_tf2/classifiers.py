"""The classifier of classifier.py: a linear SVM on embeddings, pickled as (classifier, class names).

Training, classifying and reading the pickle back with checks, for classifier.py, face.py,
predict.py and real_time_face_recognition.py.
"""
import os
import pickle

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.svm import SVC

from facenet_tf2.errors import PathError


def train_classifier(embeddings, labels):
    """A linear SVM with Platt-scaled class probabilities, as the original's
    SVC(kernel='linear', probability=True) (deprecated in scikit-learn 1.9): the sigmoid is fitted on
    cross-validated decision values (up to 5 folds), the SVM on all images. An identity with a single
    image leaves no held-out values, so then the sigmoid is fitted on the training decision values."""
    labels = np.asarray(labels)
    smallest = np.unique(labels, return_counts=True)[1].min()
    if smallest >= 2:
        model = CalibratedClassifierCV(SVC(kernel='linear'), ensemble=False, cv=min(5, smallest))
    else:
        everything = np.arange(len(labels))
        model = CalibratedClassifierCV(FrozenEstimator(SVC(kernel='linear').fit(embeddings, labels)),
                                       cv=[(everything, everything)])
    return model.fit(embeddings, labels)


def classify(svm, embeddings):
    """(class index, its probability) of the most probable class for each embedding."""
    predictions = svm.predict_proba(embeddings)
    best = np.argmax(predictions, axis=1)
    # predict_proba's columns are the classes seen in training, in sorted order.
    return svm.classes_[best], predictions[np.arange(len(best)), best]


def load_classifier(filename):
    """(classifier, class names) from a classifier.py pickle; a PathError names the file when it
    is no such pickle."""
    filename = os.path.expanduser(str(filename))
    try:
        with open(filename, 'rb') as infile:
            content = pickle.load(infile)
    except FileNotFoundError:
        raise PathError(filename, 'no such classifier file; train one with classifier.py TRAIN') from None
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError) as e:
        raise PathError(filename, f'not a classifier pickle ({type(e).__name__}: {e}); '
                                  'train one with classifier.py TRAIN') from None
    if not (isinstance(content, tuple) and len(content) == 2 and hasattr(content[0], 'predict_proba')
            and isinstance(content[1], (list, tuple))):
        raise PathError(filename, f'holds a {type(content).__name__}, not the (classifier, class names) '
                                  'that classifier.py TRAIN writes')
    model, class_names = content
    if len(getattr(model, 'classes_', ())) and max(model.classes_) >= len(class_names):
        raise PathError(filename, f'the classifier knows {len(model.classes_)} classes but the pickle names '
                                  f'{len(class_names)}; train it again with classifier.py TRAIN')
    return model, list(class_names)


def check_embedding_size(classifier, embedding_size, filename):
    """A PathError naming the pickle when its classifier was trained on embeddings of another size
    than the model gives, i.e. with another model."""
    trained_size = getattr(classifier, 'n_features_in_', None)
    if trained_size is not None and trained_size != embedding_size:
        raise PathError(filename, f'trained on {trained_size}-d embeddings, but the model gives {embedding_size}-d '
                                  'ones: it was made with another model; use that model or train again')
