"""The original's `lfw` module: the LFW pairs protocol, now facenet_tf2.evaluation.lfw."""
# pylint: disable=unused-import
from facenet_tf2.evaluation.lfw import (log, PAIR_IMAGE_EXTENSIONS, evaluate, evaluate_embeddings, add_extension,
                                        get_paths, read_pairs, read_pairs_header, write_pairs, generate_pairs)
