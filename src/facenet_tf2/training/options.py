"""The command-line flags both trainers share, with the original's names, defaults and meanings
(config.TrainingConfig is what they become; its validate() checks them)."""
import argparse

from facenet_tf2.arguments import positive_int
from facenet_tf2.training.optimizers import OPTIMIZERS


def add_common_arguments(parser, batch_size, learning_rate_schedule_file):
    """The flags train_softmax.py and train_tripletloss.py share (their defaults differ in
    --batch_size and the schedule file only), plus this port's distribution and precision flags."""
    add = parser.add_argument
    add('--logs_base_dir', type=str, default='~/logs/facenet', help='Directory where to write event logs.')
    add('--models_base_dir', type=str, default='~/models/facenet',
        help='Directory where to write trained models and checkpoints.')
    add('--gpu_memory_fraction', type=float, default=1.0,
        help='Upper bound on the amount of GPU memory that will be used by the process (below 1: GPUs allocate '
             'on demand).')
    add('--pretrained_model', type=str,
        help='Load a pretrained model before training starts: a checkpoint folder or prefix, a frozen .pb, '
             '.h5 or .keras (anything facenet.load_model reads that carries the weights).')
    add('--data_dir', type=str, default='~/datasets/casia/casia_maxpy_mtcnnalign_182_160',
        help='Path to the data directory containing aligned face patches.')
    add('--model_def', type=str, default='models.inception_resnet_v1',
        help='Model definition. Points to a module containing the definition of the inference graph.')
    add('--max_nrof_epochs', type=positive_int, default=500, help='Number of epochs to run.')
    add('--batch_size', type=positive_int, default=batch_size, help='Number of images to process in a batch.')
    add('--image_size', type=positive_int, default=160, help='Image size (height, width) in pixels.')
    add('--epoch_size', type=positive_int, default=1000, help='Number of batches per epoch.')
    add('--embedding_size', type=positive_int, default=128, help='Dimensionality of the embedding.')
    add('--random_crop', action='store_true',
        help='Performs random cropping of training images. If false, the center image_size pixels from the '
             'training images are used. If the size of the images in the data directory is equal to image_size '
             'no cropping is performed.')
    add('--random_flip', action='store_true', help='Performs random horizontal flipping of training images.')
    add('--keep_probability', type=float, default=1.0,
        help='Keep probability of dropout for the fully connected layer(s).')
    add('--weight_decay', type=float, default=0.0, help='L2 weight regularization.')
    add('--optimizer', type=str, choices=OPTIMIZERS, default='ADAGRAD', help='The optimization algorithm to use.')
    add('--learning_rate', type=float, default=0.1,
        help='Initial learning rate. If set to a negative value a learning rate schedule can be specified in '
             'the file given by --learning_rate_schedule_file.')
    add('--learning_rate_decay_epochs', type=positive_int, default=100,
        help='Number of epochs between learning rate decay.')
    add('--learning_rate_decay_factor', type=float, default=1.0, help='Learning rate decay factor.')
    add('--moving_average_decay', type=float, default=0.9999,
        help='Exponential decay for tracking of training parameters.')
    add('--seed', type=int, default=666, help='Random seed.')
    add('--learning_rate_schedule_file', type=str, default=learning_rate_schedule_file,
        help='File containing the learning rate schedule that is used when learning_rate is set to to -1.')
    add('--lfw_pairs', type=str, default='data/pairs.txt', help='The file containing the pairs to use for validation.')
    add('--lfw_dir', type=str, default='', help='Path to the data directory containing aligned face patches.')
    add('--lfw_nrof_folds', type=positive_int, default=10,
        help='Number of folds to use for cross validation. Mainly used for testing.')
    # Beyond the original.
    add('--distribution', choices=['auto', 'none', 'mirrored', 'multi_worker'], default='auto',
        help='tf.distribute strategy: auto = MultiWorkerMirroredStrategy when TF_CONFIG is set, '
             'MirroredStrategy over several GPUs, else one device.')
    add('--sync_batch_norm', action='store_true',
        help='BatchNorm statistics over the global batch (all replicas), as one device would compute them.')
    add('--precision', choices=['float32', 'bfloat16', 'float16'], default='float32',
        help='Compute precision (Keras mixed precision; weights stay float32; float16 uses loss scaling). On a CPU '
             'without bfloat16 instructions (avx512_bf16 / amx_bf16) bfloat16 is slower than float32: the run says '
             'so and trains in float32.')
    add('--jit_compile', action='store_true',
        help='Compile the train step with XLA. Off by default: on CPUs it loses (oneDNN convolutions are faster), '
             'see the README performance notes; try it on a GPU.')
    add('--no_resume', action='store_true',
        help='Start a new run even if an interrupted run with the same arguments can be resumed.')


def parser_for(description):
    return argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)

