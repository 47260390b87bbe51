"""Exports a facenet model as a frozen GraphDef protobuf (.pb), and optionally as a SavedModel, a TFLite model,
a .keras file, a float32 ONNX model and an INT8 ONNX model.

As the original: `freeze_graph.py model_dir output_file`, model_dir holding the .meta and checkpoint
files; the .pb has the tensors `input:0`, `phase_train:0` and `embeddings:0` that original client
code feeds and fetches. model_dir may also be an original-format frozen .pb, a Keras-2 .h5
(facenet_keras.h5), a .keras file, a folder holding one, or a pretrained model name
(python src/freeze_graph.py 20180402-114759 20180402-114759.pb). The checkpoint is read by variable name
(tf.train.load_checkpoint), not with import_meta_graph, which fails on the 2018 models under TF2.

--onnx and --int8 need the onnx extra (pip install -e '.[onnx]'). The INT8 model is calibrated on
--calibration_images faces of --calibration_dir (aligned as the faces it will embed); see
facenet_tf2.export.int8 for the method. Both record the standardisation (--standardization, by default
the pretrained model's own, else prewhiten) in the ONNX metadata.
"""
import argparse
import os

from facenet_tf2.arguments import add_standardization_argument, positive_int, resolve_standardization
from facenet_tf2.cli import check_output_dir, check_output_file, run_script
from facenet_tf2.errors import UserError
from facenet_tf2.export import (DEFAULT_CALIBRATION_IMAGES, calibration_faces, check_calibration_dir,
                                onnx_model_proto, save_embedding_saved_model, save_keras, write_frozen_graph,
                                write_int8_onnx, write_tflite)
from facenet_tf2.files import write_bytes_atomically
from facenet_tf2.model_io import load_keras_network
from facenet_tf2.pretrained import resolve_model
from facenet_tf2.extras import require
from facenet_tf2.weights import get_model_filenames


def main(args):
    check_output_file(args.output_file)
    for output, check in ((args.saved_model, check_output_dir), (args.tflite, check_output_file),
                          (args.keras, check_output_file), (args.onnx, check_output_file),
                          (args.int8, check_output_file)):
        if output:
            check(output)
    check_onnx_arguments(args)
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
    if args.onnx or args.int8:
        standardization = resolve_standardization(args.standardization, args.model_dir)
        float_model = onnx_model_proto(network, image_size, standardization)
        if args.onnx:
            write_bytes_atomically(os.path.expanduser(args.onnx), float_model.SerializeToString())
            print(f'ONNX model written to {args.onnx} (standardisation: {standardization})')
        if args.int8:
            faces = calibration_faces(os.path.expanduser(args.calibration_dir), args.calibration_images, image_size,
                                      standardization)
            write_int8_onnx(float_model, os.path.expanduser(args.int8), faces)
            print(f'INT8 ONNX model written to {args.int8} (calibrated on {len(faces)} faces of '
                  f'{args.calibration_dir})')


def check_onnx_arguments(args):
    """The ONNX options' refusals, before any model is loaded: runtimes installed, calibration folder usable."""
    if args.calibration_dir and not args.int8:
        raise UserError('--calibration_dir is for --int8; add --int8 OUT_int8.onnx or leave it out')
    if args.onnx or args.int8:
        require('tf2onnx')
        require('onnx')
    if args.int8:
        require('onnxruntime')
        if not args.calibration_dir:
            raise UserError('--int8 needs --calibration_dir: a folder of aligned faces (align_dataset_mtcnn.py '
                            'output) to calibrate on')
        check_calibration_dir(os.path.expanduser(args.calibration_dir), args.calibration_images)


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
    parser.add_argument('--onnx', type=str, help='Also write a float32 ONNX model to this file (onnx extra)')
    parser.add_argument('--int8', type=str,
                        help='Also write an INT8 ONNX model (static QDQ quantisation) to this file; needs '
                             '--calibration_dir (onnx extra)')
    parser.add_argument('--calibration_dir', type=str,
                        help='Aligned face images (any folder layout) the INT8 model is calibrated on; align them '
                             'as the faces the model will embed')
    parser.add_argument('--calibration_images', type=positive_int, default=DEFAULT_CALIBRATION_IMAGES,
                        help='How many calibration faces, spread over the folder (default: %(default)s)')
    add_standardization_argument(parser)
    parser.add_argument('--image_size', type=int,
                        help='Input image size (height, width) in pixels; default: what the model says, else 160')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
