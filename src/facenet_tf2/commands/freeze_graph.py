"""Exports a facenet model as a frozen GraphDef protobuf (.pb), and optionally as a SavedModel, a TFLite model
and a .keras file.

As the original: `freeze_graph.py model_dir output_file`, model_dir holding the .meta and checkpoint
files; the .pb has the tensors `input:0`, `phase_train:0` and `embeddings:0` that original client
code feeds and fetches. model_dir may also be an original-format frozen .pb, a Keras-2 .h5
(facenet_keras.h5), a .keras file, a folder holding one, or a pretrained model name
(python src/freeze_graph.py 20180402-114759 20180402-114759.pb). The checkpoint is read by variable name
(tf.train.load_checkpoint), not with import_meta_graph, which fails on the 2018 models under TF2.
"""
import argparse
import os

from facenet_tf2.cli import check_output_dir, check_output_file, run_script
from facenet_tf2.export import save_embedding_saved_model, save_keras, write_frozen_graph, write_tflite
from facenet_tf2.model_io import load_keras_network
from facenet_tf2.pretrained import resolve_model
from facenet_tf2.weights import get_model_filenames


def main(args):
    check_output_file(args.output_file)
    for output, check in ((args.saved_model, check_output_dir), (args.tflite, check_output_file),
                          (args.keras, check_output_file)):
        if output:
            check(output)
    model_dir = resolve_model(args.model_dir)
    print(f'Model directory: {model_dir}')
    if os.path.isdir(model_dir) and any(name.endswith('.meta') for name in os.listdir(model_dir)):
        meta_file, ckpt_file = get_model_filenames(model_dir)
        print(f'Metagraph file: {meta_file}')
        print(f'Checkpoint file: {ckpt_file}')
    network, image_size = load_keras_network(model_dir)
    image_size = args.image_size or image_size or 160
    graph_def = write_frozen_graph(network, os.path.expanduser(args.output_file), image_size)
    print(f'{len(graph_def.node)} ops in the final graph.')
    if args.saved_model:
        save_embedding_saved_model(network, os.path.expanduser(args.saved_model), image_size)
        print(f'SavedModel written to {args.saved_model}')
    if args.tflite:
        write_tflite(network, os.path.expanduser(args.tflite), image_size)
        print(f'TFLite model written to {args.tflite}')
    if args.keras:
        save_keras(network, os.path.expanduser(args.keras))
        print(f'Keras model written to {args.keras}')


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('model_dir', type=str,
                        help='Directory containing the metagraph (.meta) file and the checkpoint (ckpt) file '
                             'containing model parameters (or a frozen .pb, .h5 or .keras model, or a pretrained '
                             'model name)')
    parser.add_argument('output_file', type=str, help='Filename for the exported graphdef protobuf (.pb)')
    parser.add_argument('--saved_model', type=str, help='Also write a SavedModel to this directory')
    parser.add_argument('--tflite', type=str, help='Also write a TFLite model to this file')
    parser.add_argument('--keras', type=str, help='Also write the Keras network to this .keras file')
    parser.add_argument('--image_size', type=int,
                        help='Input image size (height, width) in pixels; default: what the model says, else 160')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
