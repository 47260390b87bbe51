"""Training a face recognizer with TensorFlow using softmax cross entropy loss (or ArcFace/CosFace).

The original's train_softmax.py on the TF2 training core (facenet_tf2/training): same flags,
defaults, outputs and numbers (benchmarks/check_train_step.py replays the original's own training
steps). Example, the original's VGGFace2 recipe:

    python src/train_softmax.py --logs_base_dir ~/logs/facenet/ --models_base_dir ~/models/facenet/ \\
        --data_dir ~/datasets/vggface2/vggface2_train_182/ --image_size 160 \\
        --model_def models.inception_resnet_v1 --lfw_dir ~/datasets/lfw/lfw_mtcnnalign_160/ \\
        --optimizer ADAM --learning_rate -1 --max_nrof_epochs 150 --keep_probability 0.8 --random_crop \\
        --random_flip --use_fixed_image_standardization \\
        --learning_rate_schedule_file data/learning_rate_schedule_classifier_vggface2.txt \\
        --weight_decay 5e-4 --embedding_size 512 --lfw_distance_metric 1 --lfw_use_flipped_images \\
        --lfw_subtract_mean --validation_set_split_ratio 0.05 --validate_every_n_epochs 5 \\
        --prelogits_norm_loss_factor 5e-4
"""
from facenet_tf2.cli import run_script
from facenet_tf2.training import losses
from facenet_tf2.training.config import SoftmaxConfig
from facenet_tf2.training.options import add_common_arguments, parser_for
from facenet_tf2.training.softmax import train_softmax


def main(args):
    return train_softmax(SoftmaxConfig.from_arguments(args), __file__)


def parse_arguments(argv):
    parser = parser_for(__doc__.split('\n\n')[0])
    add_common_arguments(parser, batch_size=90, learning_rate_schedule_file='data/learning_rate_schedule.txt')
    add = parser.add_argument
    add('--random_rotate', action='store_true', help='Performs random rotations of training images.')
    add('--use_fixed_image_standardization', action='store_true', help='Performs fixed standardization of images.')
    add('--center_loss_factor', type=float, default=0.0, help='Center loss factor.')
    add('--center_loss_alfa', type=float, default=0.95, help='Center update rate for center loss.')
    add('--prelogits_norm_loss_factor', type=float, default=0.0,
        help='Loss based on the norm of the activations in the prelogits layer.')
    add('--prelogits_norm_p', type=float, default=1.0, help='Norm to use for prelogits norm loss.')
    add('--prelogits_hist_max', type=float, default=10.0, help='The max value for the prelogits histogram.')
    add('--nrof_preprocess_threads', type=int, default=4,
        help='Number of preprocessing (data loading and augmentation) threads (tf.data runs as many as there are '
             'cores; kept for the original command lines).')
    add('--log_histograms', action='store_true', help='Enables logging of weight/bias histograms in tensorboard.')
    add('--filter_filename', type=str, default='', help='File containing image data used for dataset filtering.')
    add('--filter_percentile', type=float, default=100.0,
        help='Keep only the percentile images closed to its class center.')
    add('--filter_min_nrof_images_per_class', type=int, default=0,
        help='Keep only the classes with this number of examples or more.')
    add('--validate_every_n_epochs', type=int, default=5, help='Number of epoch between validation.')
    add('--validation_set_split_ratio', type=float, default=0.0,
        help='The ratio of the total dataset to use for validation.')
    add('--min_nrof_val_images_per_class', type=float, default=0,
        help='Classes with fewer images will be removed from the validation set.')
    add('--lfw_batch_size', type=int, default=100, help='Number of images to process in a batch in the LFW test set.')
    add('--lfw_distance_metric', type=int, default=0, choices=[0, 1],
        help='Type of distance metric to use. 0: Euclidian, 1:Cosine similarity distance.')
    add('--lfw_use_flipped_images', action='store_true',
        help='Concatenates embeddings for the image and its horizontally flipped counterpart.')
    add('--lfw_subtract_mean', action='store_true', help='Subtract feature mean before calculating distance.')
    add('--loss', choices=losses.LOSSES, default='softmax',
        help='The classifier head: the original softmax, or ArcFace / CosFace margins on L2-normalised features '
             'and weights.')
    add('--margin_s', type=float, default=None, help='Scale s of the margin loss (default 64).')
    add('--margin_m', type=float, default=None, help='Margin m (default 0.5 for arcface, 0.35 for cosface).')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
