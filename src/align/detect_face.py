"""The original's `align.detect_face`: MTCNN face detection, now facenet_tf2.detection.mtcnn."""
# pylint: disable=unused-import
from facenet_tf2.detection.mtcnn import (create_pnet, create_rnet, create_onet, mtcnn_package_weights_dir, load_weights,
                                         create_mtcnn, imresample, generateBoundingBox, nms, pad, rerec, bbreg,
                                         detect_faces, detect_face, bulk_detect_face)
