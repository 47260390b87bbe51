# coding=utf-8
"""Performs face detection in realtime.

As the original contributed script (François Gervais, after shanren7's real_time_face_recognition):
frames from a camera are passed through face.Recognition every third frame (detect, embed, name
with a classifier.py pickle) and shown with a green box and name on each face and the frame rate.

    python contributed/real_time_face_recognition.py --model ~/models/20170512-110547 \\
        --classifier_model my_classifier.pkl                        # camera 0, in a window; q quits
    python contributed/real_time_face_recognition.py --input clip.avi --output annotated.avi --no_display \\
        --model ~/models/20170512-110547 --classifier_model my_classifier.pkl --log faces.csv

Added: --input (a camera index or a video file), --output (the annotated video, written atomically,
so it runs headless), --no_display, --log (a CSV line per named face and frame), --model,
--classifier_model and --frame_interval (the original had them fixed in face.py). Fixed: frames are
converted from OpenCV's BGR to the RGB the detector and model expect (the original passed BGR); a
camera or video that cannot be read is a one-line error before any model is loaded.
"""
import argparse
import csv
import io
import os
import sys
import time

import cv2

from facenet_tf2.cli import run_script
from facenet_tf2.files import atomic_path, write_bytes_atomically
from facenet_tf2.errors import PathError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import face  # noqa: E402  pylint: disable=wrong-import-position

FPS_DISPLAY_INTERVAL = 5  # seconds


def add_overlays(frame, faces, frame_rate):
    for found in faces or ():
        face_bb = found.bounding_box.astype(int)
        cv2.rectangle(frame, (face_bb[0], face_bb[1]), (face_bb[2], face_bb[3]), (0, 255, 0), 2)
        if found.name is not None:
            cv2.putText(frame, found.name, (face_bb[0], face_bb[3]), cv2.FONT_HERSHEY_SIMPLEX, 1, (0, 255, 0),
                        thickness=2, lineType=2)
    cv2.putText(frame, str(frame_rate) + ' fps', (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1, (0, 255, 0),
                thickness=2, lineType=2)


def open_capture(source):
    """A cv2.VideoCapture of a camera index ('0') or a video file that delivers a first frame."""
    capture = cv2.VideoCapture(int(source)) if source.isdigit() else None
    if capture is None:
        path = os.path.expanduser(source)
        if not os.path.isfile(path):
            raise PathError(source, 'no such video file (or give a camera index such as 0)')
        capture = cv2.VideoCapture(path)
    if not capture.isOpened() or not capture.grab():
        capture.release()
        what = 'camera' if source.isdigit() else 'video'
        raise PathError(source, f'cannot read the {what} (no such device, or not a video OpenCV can decode)')
    capture.release()  # reopened from the first frame
    return cv2.VideoCapture(int(source)) if source.isdigit() else cv2.VideoCapture(os.path.expanduser(source))


def main(args):
    video_capture = open_capture(args.input)
    face_recognition = face.Recognition(model=args.model, classifier_model=args.classifier_model)
    if args.debug:
        print('Debug enabled')
        face.debug = True
    if args.output:
        with atomic_path(args.output) as temporary:
            log = run(video_capture, face_recognition, args, temporary)
    else:
        log = run(video_capture, face_recognition, args, None)
    if args.log:
        out = io.StringIO()
        csv.writer(out).writerows([('frame', 'name', 'x1', 'y1', 'x2', 'y2'), *log])
        write_bytes_atomically(args.log, out.getvalue().encode('utf-8'))
    return log


def run(video_capture, face_recognition, args, output):
    """Reads frames until the video ends (or q in the window, or Ctrl-C); returns the log rows."""
    frame_rate, frame_count, frame_index, faces, log, writer = 0, 0, 0, [], [], None
    start_time = time.time()
    try:
        while True:
            ret, frame = video_capture.read()
            if not ret:
                break
            if frame_index % args.frame_interval == 0:
                faces = face_recognition.identify(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                end_time = time.time()
                if (end_time - start_time) > FPS_DISPLAY_INTERVAL:
                    frame_rate = int(frame_count / (end_time - start_time))
                    start_time = time.time()
                    frame_count = 0
            log += [(frame_index, found.name or '', *found.bounding_box.astype(int).tolist()) for found in faces]
            add_overlays(frame, faces, frame_rate)
            frame_count += 1
            frame_index += 1
            if output:
                if writer is None:
                    fps = video_capture.get(cv2.CAP_PROP_FPS) or 25.0
                    writer = cv2.VideoWriter(output, cv2.VideoWriter_fourcc(*args.fourcc), fps,
                                             (frame.shape[1], frame.shape[0]))
                    if not writer.isOpened():
                        raise PathError(args.output, f'OpenCV cannot write {args.fourcc} video to this file type; '
                                                     'use .avi (MJPG) or another --fourcc')
                writer.write(frame)
            if not args.no_display:
                cv2.imshow('Video', frame)
                if cv2.waitKey(1) & 0xFF == ord('q'):
                    break
    except KeyboardInterrupt:
        print('Stopped')
    finally:
        video_capture.release()
        if writer is not None:
            writer.release()
        if not args.no_display:
            cv2.destroyAllWindows()
    print(f'{frame_index} frames, {len(log)} faces' + (f', annotated video written to {args.output}' if output else ''))
    return log


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--debug', action='store_true', help='Enable some debug outputs.')
    parser.add_argument('--input', type=str, default='0', help='A camera index (default 0) or a video file.')
    parser.add_argument('--output', type=str, help='Write the annotated video to this file (e.g. out.avi).')
    parser.add_argument('--fourcc', type=str, default='MJPG', help='Codec of --output (FourCC), MJPG by default.')
    parser.add_argument('--no_display', action='store_true', help='Show no window (headless).')
    parser.add_argument('--log', type=str, metavar='FILE.csv', help='Write frame, name and box of every face.')
    parser.add_argument('--model', type=str, default=face.facenet_model_checkpoint,
                        help='The facenet model (any format facenet.load_model reads).')
    parser.add_argument('--classifier_model', type=str, default=face.classifier_model,
                        help='The classifier pickle of classifier.py TRAIN.')
    parser.add_argument('--frame_interval', type=int, default=3,
                        help='Run recognition every this many frames (the boxes stay in between).')
    return parser.parse_args(argv)


def cli():
    try:
        run_script(main, parse_arguments)
    except cv2.error as e:  # no display here: the one OpenCV failure a user can fix with a flag
        sys.exit(f'real_time_face_recognition.py: OpenCV cannot show a window here ({str(e).strip().splitlines()[-1]});'
                 ' run with --no_display (and --output FILE)')


if __name__ == '__main__':
    cli()
