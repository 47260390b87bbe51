"""The original's `models.inception_resnet_v2` (--model_def): now facenet_tf2.nets.inception_resnet_v2."""
# pylint: disable=unused-import
from facenet_tf2.nets.inception_resnet_v2 import (SCOPE, BLOCK35_FILTERS, BLOCK17_FILTERS, BLOCK8_FILTERS, mixed_5b,
                                                  inception_resnet_v2, inference, build_model)
