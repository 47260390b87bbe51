"""MTCNN face detection (detect_face) and the dataset alignment script."""
