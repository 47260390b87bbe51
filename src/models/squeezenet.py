"""The original's `models.squeezenet` (--model_def): now facenet_tf2.nets.squeezenet."""
# pylint: disable=unused-import
from facenet_tf2.nets.squeezenet import (SCOPE, fire_module, squeezenet, inference, build_model)
