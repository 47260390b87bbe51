"""An example of how to use your own dataset to train a classifier that recognizes people.

As the original: `classifier.py {TRAIN,CLASSIFY} data_dir model classifier_filename` embeds every
aligned image of a folder-per-identity dataset with the model (anything load_model accepts)
and, in TRAIN mode, fits a linear SVM on the embeddings and pickles (classifier, class_names); in CLASSIFY
mode it loads that pickle, prints the best class and its probability for each image and the accuracy.
With --use_split_dataset, identities with at least --min_nrof_images_per_class images are split
(seeded) into --nrof_train_images_per_class training images and the rest for testing.

    python src/classifier.py TRAIN ~/datasets/my_faces_160 ~/models/20180402-114759 my_classifier.pkl \
        --use_fixed_image_standardization
    python src/classifier.py CLASSIFY ~/datasets/my_faces_160 ~/models/20180402-114759 my_classifier.pkl \
        --use_fixed_image_standardization

Fixed here: the original parsed --test_data_dir but never used it (CLASSIFY now embeds that folder);
accuracy compares class names, so a test folder with other or fewer identities is scored correctly
(the original compared folder indices); an identity folder without images is an error naming it
(the original's assert was always true); unreadable images are reported and left out; the pickle is
written atomically.
"""
import argparse
import os
import pickle

import numpy as np

from facenet_tf2.dataset import ImageClass, get_image_paths_and_labels
from facenet_tf2.model_io import load_model
from facenet_tf2 import pretrained
from facenet_tf2.arguments import positive_int
from facenet_tf2.classifiers import check_embedding_size, classify, load_classifier, train_classifier
from facenet_tf2.cli import check_output_file, run_script
from facenet_tf2.crops import warn_if_not_aligned
from facenet_tf2.errors import UserError
from facenet_tf2.dataset import require_dataset
from facenet_tf2.embeddings import embed_images
from facenet_tf2.files import atomic_path
from facenet_tf2.pipeline import UnreadableImages


def main(args):
    np.random.seed(seed=args.seed)
    classifier_filename_exp = os.path.expanduser(args.classifier_filename)
    if args.mode == 'TRAIN':
        check_output_file(args.classifier_filename)
    else:
        svm, trained_class_names = load_classifier(classifier_filename_exp)
    dataset = select_dataset(args)
    empty = [cls.name for cls in dataset if not cls.image_paths]
    if empty:
        raise UserError(f'{args.data_dir}: there must be at least one image for each class; none in '
                        f'{", ".join(empty[:5])}{" ..." if len(empty) > 5 else ""}, add images or remove the folder')
    if not dataset:
        raise UserError(f'{args.data_dir}: no identity has --min_nrof_images_per_class {args.min_nrof_images_per_class} '
                        'images, lower it')
    use_fixed_image_standardization = (args.use_fixed_image_standardization
                                       or pretrained.standardization(args.model) == 'fixed')
    paths, labels = get_image_paths_and_labels(dataset)
    print('Number of classes: %d' % len(dataset))
    print('Number of images: %d' % len(paths))

    print('Loading feature extraction model')
    model = load_model(args.model)
    if args.mode == 'CLASSIFY':
        check_embedding_size(svm, model.embedding_size, classifier_filename_exp)  # before the slow embedding
    print('Calculating features for images')
    warn_if_not_aligned(paths, args.image_size)
    unreadable = UnreadableImages()
    embedded = embed_images(model, paths, args.image_size, args.batch_size,
                            use_fixed_image_standardization=use_fixed_image_standardization,
                            unreadable=unreadable)
    if unreadable:
        print(unreadable.summary())
    emb_array = embedded.embeddings[embedded.found]
    labels = np.asarray(labels)[embedded.found]
    class_names = [cls.name.replace('_', ' ') for cls in dataset]

    if args.mode == 'TRAIN':
        print('Training classifier')
        svm = train_classifier(emb_array, labels)
        with atomic_path(classifier_filename_exp) as temporary, open(temporary, 'wb') as outfile:
            pickle.dump((svm, class_names), outfile)
        print('Saved classifier model to file "%s"' % classifier_filename_exp)
        return None
    print('Testing classifier')
    print('Loaded classifier model from file "%s"' % classifier_filename_exp)
    predicted, probabilities = classify(svm, emb_array)
    for i, (index, probability) in enumerate(zip(predicted, probabilities)):
        print('%4d  %s: %.3f' % (i, trained_class_names[index], probability))
    accuracy = np.mean([trained_class_names[index] == class_names[label] for index, label in zip(predicted, labels)])
    print('Accuracy: %.3f' % accuracy)
    return accuracy


def select_dataset(args):
    """The identities to embed: the training or test part of a split of data_dir, --test_data_dir
    when classifying with one, or all of data_dir."""
    if args.use_split_dataset:
        train_set, test_set = split_dataset(require_dataset(args.data_dir, 'data folder'),
                                            args.min_nrof_images_per_class, args.nrof_train_images_per_class)
        return train_set if args.mode == 'TRAIN' else test_set
    if args.mode == 'CLASSIFY' and args.test_data_dir:
        return require_dataset(args.test_data_dir, 'test data folder')
    return require_dataset(args.data_dir, 'data folder')


def split_dataset(dataset, min_nrof_images_per_class, nrof_train_images_per_class):
    """The original classifier's split: identities with at least min_nrof_images_per_class images,
    shuffled with NumPy's global random state, the first nrof_train_images_per_class for training."""
    train_set, test_set = [], []
    for cls in dataset:
        if len(cls.image_paths) >= min_nrof_images_per_class:
            paths = list(cls.image_paths)
            np.random.shuffle(paths)
            train_set.append(ImageClass(cls.name, paths[:nrof_train_images_per_class]))
            test_set.append(ImageClass(cls.name, paths[nrof_train_images_per_class:]))
    return train_set, test_set


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('mode', type=str, choices=['TRAIN', 'CLASSIFY'],
                        help='Indicates if a new classifier should be trained or a classification '
                             'model should be used for classification')
    parser.add_argument('data_dir', type=str,
                        help='Path to the data directory containing aligned face patches.')
    parser.add_argument('model', type=str,
                        help='A model directory, a frozen .pb, a checkpoint folder, a SavedModel, .keras or .h5 file, '
                             f'or a pretrained model name ({pretrained.names_text()}).')
    parser.add_argument('classifier_filename',
                        help='Classifier model file name as a pickle (.pkl) file. '
                             'For training this is the output and for classification this is an input.')
    parser.add_argument('--use_split_dataset', action='store_true',
                        help='Indicates that the dataset specified by data_dir should be split into a training and '
                             'test set. Otherwise a separate test set can be specified using --test_data_dir.')
    parser.add_argument('--test_data_dir', type=str,
                        help='Path to the test data directory containing aligned images used for testing.')
    parser.add_argument('--batch_size', type=positive_int, default=90,
                        help='Number of images to process in a batch.')
    parser.add_argument('--image_size', type=positive_int, default=160,
                        help='Image size (height, width) in pixels.')
    parser.add_argument('--seed', type=int, default=666, help='Random seed.')
    parser.add_argument('--min_nrof_images_per_class', type=int, default=20,
                        help='Only include classes with at least this number of images in the dataset')
    parser.add_argument('--nrof_train_images_per_class', type=int, default=10,
                        help='Use this number of images from each class for training and the rest for testing')
    parser.add_argument('--use_fixed_image_standardization', action='store_true',
                        help='Performs fixed standardization of images (the default for the 2018 pretrained '
                             'model names).')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
