"""facenet-tf2 library code. Users import `facenet` (the original's utility module), which
re-exports what lives here under the original names."""
__version__ = '0.1.0'
