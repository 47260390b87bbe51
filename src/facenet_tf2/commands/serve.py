"""facenet-serve: a face recognition HTTP service and web page on one model and one gallery index.

    facenet-serve --model 20180402-114759 --gallery people.npz --host 127.0.0.1 --port 8000 --open_enrollment
    FACENET_SERVE_API_KEY=secret facenet-serve --model 20180402-114759 --gallery people.npz

The gallery is an identify.py index (created empty when it does not exist). The page is at /, the
API docs at /docs; see facenet_tf2.serving.app for the endpoints and the access rules.
"""
import argparse
import ipaddress
import logging
import os
import sys

from facenet_tf2.arguments import add_standardization_argument, positive_int
from facenet_tf2.cli import check_input_file, check_output_file, run_script
from facenet_tf2.errors import UserError

API_KEY_VARIABLE = 'FACENET_SERVE_API_KEY'
DEFAULT_THRESHOLD = 1.1  # about the LFW best-accuracy threshold of the pretrained models (1.105 for 20170512-110547)


def settings_from(args):
    from facenet_tf2.serving.app import Settings  # pylint: disable=import-outside-toplevel
    return Settings(api_key=args.api_key or os.environ.get(API_KEY_VARIABLE) or None,
                    protect_reads=args.protect_reads, open_enrollment=args.open_enrollment,
                    max_upload_bytes=int(args.max_upload_mb * (1 << 20)), max_pixels=args.max_pixels,
                    max_images=args.max_images, max_batch=args.max_batch, batch_window=args.batch_window_ms / 1000,
                    top_k=args.top_k)


def threshold_of(args):
    if args.lfw_json:
        from facenet_tf2.gallery import threshold_from_validation  # pylint: disable=import-outside-toplevel
        return threshold_from_validation(check_input_file(args.lfw_json, 'validate_on_lfw.py --json result'))[0]
    return DEFAULT_THRESHOLD if args.threshold is None else args.threshold


def check_arguments(args):
    """Everything that can be wrong with the arguments, before the model loads."""
    if not 0 < args.port < 65536:
        raise UserError(f'--port {args.port} is not a TCP port; give 1 to 65535')
    if args.max_upload_mb <= 0 or args.max_pixels < 1 or args.batch_window_ms < 0:
        raise UserError('--max_upload_mb and --max_pixels must be positive and --batch_window_ms at least 0')
    if args.read_only:
        check_input_file(args.gallery, 'gallery index (a read-only replica serves an existing one)')
    elif not os.path.exists(os.path.expanduser(args.gallery)):
        check_output_file(args.gallery)
    settings = settings_from(args)  # refuses --protect_reads without a key
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == 'localhost'
    if not loopback:
        print(f'facenet-serve: listening on {args.host}, not only this machine: '
              + ('changes need the API key' if settings.api_key else 'anyone who can reach it can '
                 + ('change the gallery' if settings.open_enrollment else 'search it')), file=sys.stderr)
    return settings, threshold_of(args)


def main(args):
    settings, threshold = check_arguments(args)
    import uvicorn  # pylint: disable=import-outside-toplevel
    from facenet_tf2.serving import FaceService, GalleryStore, create_app  # pylint: disable=import-outside-toplevel
    logging.basicConfig(level=args.log_level.upper(), format='%(message)s', stream=sys.stderr)
    service = FaceService.load(args.model, args.precision, args.standardization, args.margin, threshold)
    gallery = GalleryStore(args.gallery, service.identity(), read_only=args.read_only)
    app = create_app(service, gallery, settings)
    # uvicorn's own access log is off: the app writes one JSON line per request instead.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                timeout_graceful_shutdown=args.shutdown_timeout)
    return app


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--model', default='20180402-114759',
                        help='A pretrained model name, or a model directory or file (as compare.py takes).')
    parser.add_argument('--gallery', required=True, help='The identify.py index (.npz); created empty if missing.')
    parser.add_argument('--host', default='127.0.0.1', help='Address to listen on (default: this machine only).')
    parser.add_argument('--port', type=int, default=8000, help='TCP port.')
    parser.add_argument('--api_key', help=f'Key the changing endpoints require in X-API-Key (or set {API_KEY_VARIABLE}).')
    parser.add_argument('--protect_reads', action='store_true', help='Require the key on every endpoint but / and /health.')
    parser.add_argument('--open_enrollment', action='store_true',
                        help='Without a key, let anyone enrol and remove people (refused otherwise).')
    parser.add_argument('--read_only', action='store_true',
                        help='A replica: serve the gallery file, reload it when the writer replaces it, refuse changes.')
    threshold = parser.add_mutually_exclusive_group()
    threshold.add_argument('--threshold', type=float,
                           help=f'Euclidean distance for same person / known person (default {DEFAULT_THRESHOLD}).')
    threshold.add_argument('--lfw_json', help="Take the threshold from this validate_on_lfw.py --json result.")
    parser.add_argument('--precision', choices=['float32', 'bfloat16'], default='float32',
                        help='bfloat16: about twice as fast on CPUs with AMX/AVX512-BF16 and recent GPUs.')
    add_standardization_argument(parser)
    parser.add_argument('--margin', type=int, default=44, help='Margin for the crop around the face box, in pixels.')
    parser.add_argument('--top_k', type=positive_int, default=5, help='Default number of matches /identify lists.')
    parser.add_argument('--max_upload_mb', type=float, default=10.0, help='Largest request body, in MiB.')
    parser.add_argument('--max_pixels', type=int, default=25_000_000, help='Largest decoded photo, in pixels.')
    parser.add_argument('--max_images', type=positive_int, default=20, help='Most photos per /enroll request.')
    parser.add_argument('--max_batch', type=positive_int, default=32, help='Most photos per detector and model call.')
    parser.add_argument('--batch_window_ms', type=float, default=5.0,
                        help='How long the first photo of a batch waits for others.')
    parser.add_argument('--shutdown_timeout', type=float, default=30.0,
                        help='Seconds in-flight requests get to finish on SIGTERM / Ctrl-C.')
    parser.add_argument('--log_level', choices=['debug', 'info', 'warning', 'error'], default='info')
    return parser.parse_args(argv)


def cli():
    run_script(main, parse_arguments, prog='facenet-serve')


if __name__ == '__main__':
    cli()
