"""facenet-serve by path: python src/serve.py --model 20180402-114759 --gallery people.npz (see facenet_tf2.commands.serve)."""
from facenet_tf2.commands.serve import cli

if __name__ == '__main__':
    cli()
