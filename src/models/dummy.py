"""The original's `models.dummy` (--model_def): now facenet_tf2.nets.dummy."""
# pylint: disable=unused-import
from facenet_tf2.nets.dummy import (SCOPE, NAME, dummy, inference, build_model)
