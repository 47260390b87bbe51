"""The original's `models.inception_resnet_v1` (--model_def): now facenet_tf2.nets.inception_resnet_v1."""
# pylint: disable=unused-import
from facenet_tf2.nets.inception_resnet_v1 import (SCOPE, conv, block35, block17, block8, reduction_a, reduction_b,
                                                  repeat, stem, inception_resnet_v1, inference, build_model)
