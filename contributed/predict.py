"""Names the people in photos with a classifier trained by classifier.py.

As the original contributed script (Rishi Rai, 2017): every face MTCNN finds in each image is aligned
(--margin, --image_size), embedded with the model and classified with the pickle of
`classifier.py TRAIN`; for each image it prints the people in it with their probabilities:

    python contributed/predict.py photo1.jpg photo2.jpg ~/models/20170512-110547 my_classifier.pkl

Fixed here: an image without a face or an unreadable one is reported (the original crashed, and with
no face anywhere np.stack failed); a pickle that is not a classifier or was trained with another
model (other embedding size) is a one-line error before any embedding. Added: --standardization fixed.
"""
import argparse
import os

import facenet
from facenet_tf2.arguments import add_standardization_argument, positive_int, resolve_standardization
from facenet_tf2.classifiers import check_embedding_size, classify, load_classifier
from facenet_tf2.cli import run_script
from facenet_tf2.faces import create_detector, embed_crops, find_faces
from facenet_tf2.errors import PathError
from facenet_tf2.images import read_image
from facenet_tf2.errors import ImageReadError


def main(args):
    classifier_filename = os.path.expanduser(args.classifier_filename)
    model_svm, class_names = load_classifier(classifier_filename)
    images = {}
    for path in args.image_files:
        try:
            images[path] = read_image(os.path.expanduser(path))
        except ImageReadError as e:
            print(f"can't read image {e}")
    print('Creating networks and loading parameters')
    faces = find_faces(list(images.values()), create_detector(args.gpu_memory_fraction), args.margin, args.image_size)
    if not any(faces):
        what = args.image_files[0] if len(args.image_files) == 1 else f'none of the {len(args.image_files)} images'
        raise PathError(what, 'no face found; use photos that show a face')
    model = facenet.load_model(os.path.expanduser(args.model))
    check_embedding_size(model_svm, model.embedding_size, classifier_filename)
    print('Loaded classifier model from file "%s"\n' % classifier_filename)
    people = {}
    for path, image_faces in zip(images, faces):
        print('\npeople in image %s :' % path)
        if not image_faces:
            print('no face found')
            people[path] = []
            continue
        best, probabilities = classify(model_svm, embed_crops(model, [crop for crop, _, _ in image_faces],
                                                              resolve_standardization(args.standardization, args.model)))
        people[path] = [(class_names[index], float(probability)) for index, probability in zip(best, probabilities)]
        for name, probability in people[path]:
            print('%s: %.3f' % (name, probability))
    return people


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('image_files', type=str, nargs='+', help='Path(s) of the image(s)')
    parser.add_argument('model', type=str,
                        help='Could be either a directory containing the meta_file and ckpt_file or a model protobuf '
                             '(.pb) file (or a SavedModel, .keras or .h5 model)')
    parser.add_argument('classifier_filename',
                        help='Classifier model file name as a pickle (.pkl) file, written by classifier.py TRAIN.')
    parser.add_argument('--image_size', type=positive_int, help='Image size (height, width) in pixels.', default=160)
    parser.add_argument('--seed', type=int, help='Random seed (unused, as in the original).', default=666)
    parser.add_argument('--margin', type=int, default=44,
                        help='Margin for the crop around the bounding box (height, width) in pixels.')
    parser.add_argument('--gpu_memory_fraction', type=float, default=1.0,
                        help='Upper bound on the amount of GPU memory that will be used by the process.')
    add_standardization_argument(parser)
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
