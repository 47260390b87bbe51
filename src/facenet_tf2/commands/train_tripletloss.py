"""Training a face recognizer with TensorFlow based on the FaceNet paper
FaceNet: A Unified Embedding for Face Recognition and Clustering: http://arxiv.org/abs/1503.03832

The original's train_tripletloss.py on the TF2 training core (facenet_tf2/training): same flags,
defaults and outputs. The default --triplet_strategy vggface is the original's algorithm (sample
people, embed them in training mode, one random margin-violating negative per anchor-positive
pair, train on those triplets); batch_hard, batch_semihard and batch_all mine P x K batches
online. Example, the original's command line:

    python src/train_tripletloss.py --logs_base_dir ~/logs/facenet/ --models_base_dir ~/models/facenet/ \\
        --data_dir ~/datasets/casia/casia_maxpy_mtcnnalign_182_160 --image_size 160 \\
        --model_def models.inception_resnet_v1 --lfw_dir ~/datasets/lfw/lfw_mtcnnalign_160 \\
        --optimizer RMSPROP --learning_rate 0.01 --weight_decay 1e-4 --max_nrof_epochs 500
"""
from facenet_tf2.cli import run_script
from facenet_tf2.training.config import TripletConfig
from facenet_tf2.training.options import add_common_arguments, parser_for
from facenet_tf2.training.triplet_training import STRATEGIES, train_tripletloss


def main(args):
    return train_tripletloss(TripletConfig.from_arguments(args), __file__)


def parse_arguments(argv):
    parser = parser_for(__doc__.split('\n\n')[0])
    add_common_arguments(parser, batch_size=90, learning_rate_schedule_file='data/learning_rate_schedule.txt')
    parser.set_defaults(model_def='models.inception_resnet_v2')  # the original triplet script's default
    add = parser.add_argument
    add('--people_per_batch', type=int, default=45, help='Number of people per batch.')
    add('--images_per_person', type=int, default=40, help='Number of images per person.')
    add('--alpha', type=float, default=0.2, help='Positive to negative triplet distance margin.')
    add('--triplet_strategy', choices=STRATEGIES, default='vggface',
        help='vggface: the original (sampled people, one random margin-violating negative per pair); batch_hard, '
             'batch_semihard, batch_all: online mining of P x K batches, K = --images_per_person, '
             'P = --batch_size / K.')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
