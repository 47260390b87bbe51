"""Face detection and alignment: MTCNN (mtcnn) and the dataset aligner behind align_dataset_mtcnn.py (aligner)."""
