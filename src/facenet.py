"""The original facenet utility module, on TensorFlow 2.

`import facenet` gives the original's functions under their original names; the code lives in
the `facenet_tf2` modules behind it, one concern per module.
"""
# pylint: disable=unused-import
from facenet_tf2.dataset import (ImageClass, get_dataset, get_image_paths, get_image_paths_and_labels,
                                 shuffle_examples, split_dataset)
from facenet_tf2.images import (IMAGE_EXTENSIONS, crop, fixed_image_standardization, flip, is_image_file, load_data,
                                prewhiten, put_images_on_grid, read_image, to_rgb)
from facenet_tf2.errors import ImageReadError
from facenet_tf2.evaluation.metrics import (calculate_accuracy, calculate_roc, calculate_val, calculate_val_far, distance,
                                            plot_roc)
from facenet_tf2.pipeline import (FIXED_STANDARDIZATION, FLIP, RANDOM_CROP, RANDOM_FLIP, RANDOM_ROTATE,
                                  UnreadableImages, create_input_pipeline, get_control_flag, preprocess_image,
                                  random_rotate_image)
from facenet_tf2.runfiles import (LEARNING_RATE_STOP, get_learning_rate_from_file, read_learning_rate_schedule,
                                  store_revision_info, write_arguments_to_file)
from facenet_tf2.model_io import EmbeddingModel, load_model
from facenet_tf2.weights import get_model_filenames, list_variables
from facenet_tf2.errors import ImageSizeError, ModelLoadError
