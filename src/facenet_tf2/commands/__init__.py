"""The scripts' bodies: each module parses its flags, calls the library and prints; `src/<name>.py` and the console commands run its `cli()`."""
