"""The scripts' bodies: each module parses its flags, calls the library and prints; `src/<name>.py`
and the console commands run its `cli()`. Importing this package starts TensorFlow quietly
(facenet_tf2.quiet), before any command module imports it."""
from facenet_tf2.quiet import start_tensorflow_quietly

start_tensorflow_quietly()
