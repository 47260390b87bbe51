"""Verification on pairs of faces: the LFW protocol (lfw) and its k-fold metrics (metrics)."""
