"""train_vae.py: trains a variational autoencoder of aligned faces with the DFC perceptual loss (or a
plain pixel loss), with the original's command line:

    python src/generative/train_vae.py generative.models.dfc_vae ~/datasets/casia_mtcnn_64 \
        models.inception_resnet_v1 20170512-110547 --input_image_size 64 --max_nrof_steps 50000

Writes into <models_base_dir>/<subdir>/: arguments.txt, revision_info.txt, logs.h5, reconstructed_<step>.png
and the VAE checkpoints (model-<subdir>.ckpt-<step>, original variable names). The same command again
resumes an interrupted run (--no_resume starts afresh).
"""
import argparse
import os
import sys

import keras

from facenet_tf2.cli import check_input_dir, run_script
from facenet_tf2.dataset import get_dataset, get_image_paths_and_labels
from facenet_tf2.errors import TrainingInputError
from facenet_tf2.generative import training
from facenet_tf2.generative.checkpoints import vae_class
from facenet_tf2.generative.perceptual import load_feature_model, parse_feature_names
from facenet_tf2.runfiles import store_revision_info, write_arguments_to_file
from facenet_tf2.training.folders import open_model_folder

_NOT_PART_OF_THE_RUN = {'no_resume'}


def main(args):
    data_dir = check_input_dir(args.data_dir, 'dataset folder')
    keras.utils.set_random_seed(args.seed)  # the original's tf.set_random_seed: the same initial weights
    vae = vae_class(args.vae_def)(args.latent_var_size)
    image_list, _ = get_image_paths_and_labels(get_dataset(data_dir))
    training.check_image_sizes(image_list, args.input_image_size)
    if len(image_list) < args.batch_size:
        raise TrainingInputError(f'{args.data_dir}: {len(image_list)} images, fewer than --batch_size '
                                 f'{args.batch_size}; lower --batch_size')
    features = None
    if args.reconstruction_loss_type == 'PERCEPTUAL':
        # model_def names the network; the weights decide it here (any format the port reads)
        print(f'Restoring pretrained model: {args.pretrained_model}')
        features = load_feature_model(args.pretrained_model, parse_feature_names(args.loss_features))

    arguments = {k: v for k, v in sorted(vars(args).items()) if k not in _NOT_PART_OF_THE_RUN}
    subdir, model_dir, resumed = open_model_folder(args.models_base_dir, arguments, args.no_resume)
    write_arguments_to_file(args, os.path.join(model_dir, 'arguments.txt'))
    store_revision_info(os.path.dirname(os.path.realpath(__file__)), model_dir, ' '.join(sys.argv))
    print(f'Model directory: {model_dir}' + (' (resumed)' if resumed else ''))

    trainer = training.VaeTrainer(vae, args, features)
    training.train(trainer, image_list, model_dir, subdir, resumed)
    return model_dir


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('vae_def', type=str,
                        help='Model definition for the variational autoencoder: a module with a Vae class '
                             '(generative.models.dfc_vae, dfc_vae_large, dfc_vae_resnet).')
    parser.add_argument('data_dir', type=str, help='Path to the data directory containing aligned face patches.')
    parser.add_argument('model_def', type=str,
                        help='Model definition of the perceptual-loss network (models.inception_resnet_v1); '
                             'the network is built from the weights of pretrained_model.')
    parser.add_argument('pretrained_model', type=str,
                        help='Pretrained facenet model for the perceptual loss: a pretrained name '
                             '(20170512-110547, ...), a .pb, a checkpoint folder, .keras or .h5.')
    parser.add_argument('--models_base_dir', type=str, default='~/vae',
                        help='Directory where to write trained models and checkpoints.')
    parser.add_argument('--loss_features', type=str, default='Conv2d_1a_3x3,Conv2d_2a_3x3, Conv2d_2b_3x3',
                        help='Comma separated list of end points of the network to use for the perceptual loss.')
    parser.add_argument('--reconstruction_loss_type', type=str, choices=['PLAIN', 'PERCEPTUAL'], default='PERCEPTUAL',
                        help='The type of reconstruction loss to use')
    parser.add_argument('--max_nrof_steps', type=int, default=50000, help='Number of steps to run.')
    parser.add_argument('--save_every_n_steps', type=int, default=500,
                        help='Number of steps between storing of model checkpoint, log files and image grid')
    parser.add_argument('--batch_size', type=int, default=128, help='Number of images to process in a batch.')
    parser.add_argument('--input_image_size', type=int, default=160,
                        help='Image size of input images (height, width) in pixels; the perceptual loss '
                             'network sees this size. Images of another size are refused.')
    parser.add_argument('--latent_var_size', type=int, default=100, help='Dimensionality of the latent variable.')
    parser.add_argument('--initial_learning_rate', type=float, default=0.0005, help='Initial learning rate.')
    parser.add_argument('--learning_rate_decay_steps', type=int, default=1,
                        help='Number of steps between learning rate decay.')
    parser.add_argument('--learning_rate_decay_factor', type=float, default=1.0, help='Learning rate decay factor.')
    parser.add_argument('--seed', type=int, default=666, help='Random seed.')
    parser.add_argument('--alfa', type=float, default=1.0, help='Kullback-Leibler divergence loss factor.')
    parser.add_argument('--beta', type=float, default=0.5, help='Reconstruction loss factor.')
    parser.add_argument('--no_resume', action='store_true',
                        help='Start a new run even if an interrupted run with the same arguments can be resumed.')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)
