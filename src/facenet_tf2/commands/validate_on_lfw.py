"""Validate a face recognizer on the "Labeled Faces in the Wild" dataset (http://vis-www.cs.umass.edu/lfw/).

Embeddings are calculated for the pairs of the pairs file (LFW's pairs.txt, or one written by
generate_pairs.py for any dataset) and evaluated with cross-validation: accuracy, validation
rate at FAR 1e-3, AUC and EER, printed as the original printed them. The model is anything
load_model accepts: a pretrained model name, a frozen .pb, a checkpoint directory, a
SavedModel, a .keras or .h5; a pretrained name also picks its image standardisation.

    python src/validate_on_lfw.py ~/datasets/lfw/lfw_mtcnnpy_160 20170512-110547 --roc_plot roc.png --json lfw.json

Pairs with a missing image (MTCNN finds no face in Marilyn_Monroe_0001, so LFW's aligned folder
lacks it) are left out with a warning that counts them; --strict stops instead.
"""
import argparse
import json
import os
import time

import numpy as np
import tensorflow as tf

from facenet_tf2.model_io import load_model
from facenet_tf2.evaluation import lfw
from facenet_tf2 import pretrained
from facenet_tf2.arguments import positive_int
from facenet_tf2.cli import check_input_dir, check_input_file, check_output_file, run_script
from facenet_tf2.errors import UserError
from facenet_tf2.embeddings import embed_images
from facenet_tf2.files import atomic_path
from facenet_tf2.evaluation.metrics import plot_roc
from facenet_tf2.pipeline import UnreadableImages

# Missing pairs named in the warning.
NROF_NAMED_MISSING = 3


def main(args):
    if args.num_inter_threads or args.num_intra_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.num_inter_threads)
        tf.config.threading.set_intra_op_parallelism_threads(args.num_intra_threads)
    lfw_dir = check_input_dir(args.lfw_dir, 'folder of aligned LFW images (align_dataset_mtcnn.py writes it)')
    lfw_pairs = check_input_file(args.lfw_pairs, 'pairs file (LFW\'s is data/pairs.txt)')
    for output in (args.roc_plot, args.json, args.save_embeddings):
        if output:
            check_output_file(output)
    paths, actual_issame, skipped = find_pair_images(lfw_dir, lfw_pairs, args.strict)
    nrof_folds = args.lfw_nrof_folds or (lfw.read_pairs_header(lfw_pairs) or (10,))[0]
    use_fixed_image_standardization = (args.use_fixed_image_standardization
                                       or pretrained.standardization(args.model) == 'fixed')
    if use_fixed_image_standardization and not args.use_fixed_image_standardization:
        print(f'Using fixed image standardization, as {args.model} was trained with it')

    start = time.perf_counter()
    model = load_model(args.model, precision=args.precision)
    load_seconds = time.perf_counter() - start
    if model.image_size is not None and model.image_size != args.image_size:
        raise UserError(f'{args.model}: the model takes {model.image_size}x{model.image_size} images, '
                        f'not --image_size {args.image_size}; align with --image_size {model.image_size}')

    print('Running forward pass on LFW images')
    unreadable = UnreadableImages()
    embedded = embed_images(model, paths, args.image_size, args.lfw_batch_size,
                            use_flipped_images=args.use_flipped_images,
                            use_fixed_image_standardization=use_fixed_image_standardization,
                            unreadable=unreadable)
    embeddings, evaluated_issame, nrof_unreadable_pairs = _pairs_with_both_embeddings(embedded, actual_issame)
    if unreadable:
        print(unreadable.summary())
        print(f'Skipped {nrof_unreadable_pairs} image pairs with unreadable images')

    # The original kept the embeddings in a float64 array; its metrics ran on that.
    result = lfw.evaluate_embeddings(embeddings.astype(np.float64), evaluated_issame, nrof_folds,
                                     args.distance_metric, args.subtract_mean)
    print('Accuracy: %2.5f+-%2.5f' % (result.accuracy, result.accuracy_std))
    print('Validation rate: %2.5f+-%2.5f @ FAR=%2.5f' % (result.val, result.val_std, result.far))
    print('Area Under Curve (AUC): %1.3f' % result.auc)
    print('Equal Error Rate (EER): %1.3f' % result.eer)

    if args.roc_plot:
        plot_roc(result, args.roc_plot, title=f'{os.path.basename(os.path.normpath(args.model))} on '
                                              f'{os.path.basename(lfw_pairs)}')
        print(f'ROC curve written to {args.roc_plot}')
    if args.save_embeddings:
        _save_embeddings(args.save_embeddings, lfw_dir, paths, embedded, actual_issame)
        print(f'Embeddings written to {args.save_embeddings}')
    if args.json:
        report = {'model': args.model, 'lfw_dir': lfw_dir, 'lfw_pairs': lfw_pairs,
                  'arguments': vars(args),
                  'nrof_skipped_pairs': len(skipped) + nrof_unreadable_pairs,
                  'unreadable_images': [{'path': path, 'problem': problem} for path, problem in unreadable.failures],
                  'nrof_images_embedded': embedded.nrof_embedded,
                  'seconds': {'load_model': load_seconds, 'embedding': embedded.seconds,
                              'model': embedded.model_seconds, 'input_wait': embedded.input_wait_seconds},
                  **result.to_dict()}
        with atomic_path(args.json) as temporary, open(temporary, 'w') as f:
            json.dump(report, f, indent=1)
        print(f'Results written to {args.json}')
    return result


def find_pair_images(lfw_dir, lfw_pairs, strict=False):
    """(paths, issame, skipped) of the pairs file's pairs in lfw_dir, checked before any model is
    loaded. Pairs with a missing image are left out with one warning (an error with `strict`);
    no pairs, or none with both images, is an error."""
    pairs = lfw.read_pairs(lfw_pairs)
    if len(pairs) == 0:
        raise UserError(f'{lfw_pairs}: no pairs in the file, give a pairs file such as data/pairs.txt '
                        '(generate_pairs.py writes one for any dataset)')
    skipped = None if strict else []
    try:
        paths, actual_issame = lfw.get_paths(lfw_dir, pairs, skipped=skipped)
    except FileNotFoundError as e:
        raise UserError(f'{e}; align the missing image or leave out --strict to skip its pairs') from None
    if not actual_issame:
        raise UserError(f'{lfw_dir}: none of the {len(pairs)} pairs of {lfw_pairs} has its images there '
                        f'(looked for e.g. {skipped[0][1].split(":")[0]}); give the aligned folder the pairs '
                        'file names')
    if skipped:
        named = ', '.join(' '.join(pair) for pair, _ in skipped[:NROF_NAMED_MISSING])
        more = f' and {len(skipped) - NROF_NAMED_MISSING} more' if len(skipped) > NROF_NAMED_MISSING else ''
        print(f'Warning: skipped {len(skipped)} of {len(pairs)} pairs with a missing image ({named}{more}); '
              f'the figures are over the other {len(actual_issame)} pairs (--strict stops instead)')
    return paths, actual_issame, skipped or []


def _pairs_with_both_embeddings(embedded, actual_issame):
    """The embeddings and issame of the pairs whose two images were both read (pair k is rows
    2k and 2k+1), and the number of pairs left out."""
    pair_found = embedded.found[0::2] & embedded.found[1::2]
    keep_rows = np.repeat(pair_found, 2)
    return embedded.embeddings[keep_rows], np.asarray(actual_issame)[pair_found], int(np.sum(~pair_found))


def _save_embeddings(filename, lfw_dir, paths, embedded, actual_issame):
    """An .npz laid out as the reference embeddings: paths relative to lfw_dir, embeddings, issame."""
    relative = [os.path.relpath(path, lfw_dir) for path in paths]
    with atomic_path(filename) as temporary:
        np.savez(temporary, paths=np.array(relative), embeddings=embedded.embeddings, found=embedded.found,
                 issame=np.asarray(actual_issame))


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('lfw_dir', type=str,
                        help='Path to the data directory containing aligned LFW face patches.')
    parser.add_argument('--lfw_batch_size', type=positive_int,
                        help='Number of images to process in a batch in the LFW test set.', default=100)
    parser.add_argument('model', type=str,
                        help='A frozen model protobuf (.pb) file, a directory with a meta graph and checkpoint, '
                             'a SavedModel directory, a .keras / .h5 file, or a pretrained model name '
                             f'({pretrained.names_text()}), downloaded on first use.')
    parser.add_argument('--image_size', type=int,
                        help='Image size (height, width) in pixels.', default=160)
    parser.add_argument('--lfw_pairs', type=str,
                        help='The file containing the pairs to use for validation.', default='data/pairs.txt')
    parser.add_argument('--lfw_nrof_folds', type=positive_int,
                        help='Number of folds to use for cross validation (default: from the pairs file header, '
                             '10 for LFW).', default=None)
    parser.add_argument('--distance_metric', type=int, choices=[0, 1],
                        help='Distance metric  0:euclidian, 1:cosine similarity.', default=0)
    parser.add_argument('--use_flipped_images',
                        help='Concatenates embeddings for the image and its horizontally flipped counterpart.',
                        action='store_true')
    parser.add_argument('--subtract_mean',
                        help='Subtract feature mean before calculating distance.', action='store_true')
    parser.add_argument('--use_fixed_image_standardization',
                        help='Performs fixed standardization of images (the default for the 2018 pretrained '
                             'model names).', action='store_true')
    parser.add_argument('--num_inter_threads', type=int,
                        help='Number of inter op threads (0: TensorFlow decides).', default=0)
    parser.add_argument('--num_intra_threads', type=int,
                        help='Number of intra op thread pool threads (0: TensorFlow decides).', default=0)
    parser.add_argument('--strict', action='store_true',
                        help='Stop with an error at a pair whose image file is missing, instead of leaving it out '
                             'with a warning that counts such pairs.')
    parser.add_argument('--skip_missing_pairs', action='store_true',
                        help='Leave out pairs whose image file is missing: the default now, kept for old command '
                             'lines.')
    parser.add_argument('--roc_plot', type=str, metavar='FILE.png',
                        help='Write the ROC curve with the accuracy and VAL@FAR operating points to this image.')
    parser.add_argument('--json', type=str, metavar='FILE',
                        help='Write every number (per fold, ROC curve, timings) to this JSON file.')
    parser.add_argument('--save_embeddings', type=str, metavar='FILE.npz',
                        help='Write the embeddings (paths, embeddings, found, issame) to this .npz file.')
    parser.add_argument('--precision', choices=['float32', 'bfloat16'], default='float32',
                        help='Compute the embeddings in bfloat16: about twice as fast on CPUs with AVX512-BF16 '
                             'and on recent GPUs, with slightly different numbers (see README).')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments)


if __name__ == '__main__':
    cli()
