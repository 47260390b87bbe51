"""facenet-serve under load: requests/s and latency for 1, 8 and 32 concurrent clients, against the
same work done by calling the library in a loop.

The server runs as `src/serve.py` in its own process on 127.0.0.1 (never another address); the
load generator (asyncio + httpx, one connection per client) posts LFW photos to /embed (or
/identify against a gallery of them). Each level is bounded: --requests requests or --max_seconds,
whichever comes first. The baseline is one process decoding each photo and calling
facenet_tf2.faces.detect_faces + embed_crops on it, one photo at a time: what a script embedding
photos one by one does, and what the server does for one client.

    python benchmarks/bench_serve.py                                  # shared frozen 20170512-110547
    python benchmarks/bench_serve.py --model 20180402-114759 --requests 200 --json bench_serve.json
"""
import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from facenet_tf2.faces import create_detector, detect_faces, embed_crops
from facenet_tf2.images import decode_image
from facenet_tf2.serving.live import free_port

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('FACENET_SHARED', ROOT.parent / 'shared'))


def photos(folder, count):
    files = sorted(Path(folder).glob('*/*.jpg'))
    if not files:
        sys.exit(f'bench_serve.py: no LFW photos under {folder}; set FACENET_SHARED or --images')
    step = max(1, len(files) // count)
    return [path.read_bytes() for path in files[::step][:count]]


def percentile(values, q):
    return float(np.percentile(np.asarray(values) * 1000, q)) if values else float('nan')


def library_loop(model_name, data, requests, max_seconds):
    from facenet_tf2.model_io import load_model  # pylint: disable=import-outside-toplevel
    from facenet_tf2.arguments import resolve_standardization  # pylint: disable=import-outside-toplevel
    model = load_model(model_name)
    standardization = model.standardization or resolve_standardization(None, model_name)
    networks = create_detector()
    latencies = []

    def one(photo):
        faces = detect_faces([decode_image(photo, 'photo')], networks, 44, model.image_size or 160)[0]
        if faces:
            embed_crops(model, np.stack([face.crop for face in faces]), standardization)
    one(data[0])  # warm-up: the first calls trace the functions
    started = time.perf_counter()
    for i in range(requests):
        if time.perf_counter() - started > max_seconds:
            break
        begin = time.perf_counter()
        one(data[i % len(data)])
        latencies.append(time.perf_counter() - begin)
    return {'mode': 'library loop', 'clients': 1, 'requests': len(latencies), 'errors': 0,
            'seconds': time.perf_counter() - started, 'latencies': latencies}


async def load(url, endpoint, data, clients, requests, max_seconds):
    latencies, errors, counter = [], [], iter(range(requests))
    started = time.perf_counter()

    async def client():
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            for i in counter:
                if time.perf_counter() - started > max_seconds:
                    return
                begin = time.perf_counter()
                try:
                    answer = await http.post(endpoint, files={'image': ('photo.jpg', data[i % len(data)], 'image/jpeg')})
                    if answer.status_code != 200:
                        errors.append(f'{answer.status_code} {answer.text[:200]}')
                        continue
                except httpx.HTTPError as e:
                    errors.append(repr(e))
                    continue
                latencies.append(time.perf_counter() - begin)
    await asyncio.gather(*(client() for _ in range(clients)))
    return {'mode': f'server {endpoint}', 'clients': clients, 'requests': len(latencies) + len(errors),
            'errors': len(errors), 'error_examples': errors[:3], 'seconds': time.perf_counter() - started,
            'latencies': latencies}


def start_server(args, gallery, port):
    command = [sys.executable, str(ROOT / 'src' / 'serve.py'), '--model', args.model, '--gallery', gallery,
               '--host', '127.0.0.1', '--port', str(port), '--log_level', 'warning', '--open_enrollment',
               '--precision', args.precision, '--max_batch', str(args.max_batch),
               '--batch_window_ms', str(args.batch_window_ms)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f'bench_serve.py: the server exited with status {server.returncode}: {" ".join(command)}')
        try:
            if httpx.get(url + '/health', timeout=1).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.2)
    server.terminate()
    sys.exit('bench_serve.py: the server did not start in 300 s')


def row(result, baseline):
    throughput = result['requests'] / result['seconds'] if result['seconds'] else float('nan')
    result.update(requests_per_second=throughput, p50_ms=percentile(result['latencies'], 50),
                  p99_ms=percentile(result['latencies'], 99),
                  speedup=throughput / baseline if baseline else 1.0)
    return (f"| {result['mode']} | {result['clients']} | {result['requests']} | {result['errors']} | "
            f"{throughput:.2f} | {result['p50_ms']:.0f} | {result['p99_ms']:.0f} | {result['speedup']:.2f}x |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--model', default=str(SHARED / 'models' / '20170512-110547' / '20170512-110547.pb'))
    parser.add_argument('--images', default=str(SHARED / 'lfw' / 'lfw-deepfunneled'))
    parser.add_argument('--nrof_images', type=int, default=64, help='Distinct photos sent (in turn).')
    parser.add_argument('--requests', type=int, default=128, help='Requests per level (at most).')
    parser.add_argument('--max_seconds', type=float, default=120, help='Time per level (at most).')
    parser.add_argument('--clients', type=int, nargs='+', default=[1, 8, 32])
    parser.add_argument('--endpoint', choices=['/embed', '/identify'], default='/embed')
    parser.add_argument('--precision', choices=['float32', 'bfloat16'], default='float32')
    parser.add_argument('--max_batch', type=int, default=32)
    parser.add_argument('--batch_window_ms', type=float, default=5.0)
    parser.add_argument('--json', help='Also write the results here.')
    args = parser.parse_args()
    data = photos(args.images, args.nrof_images)
    print('| mode | clients | requests | errors | requests/s | p50 ms | p99 ms | vs loop |\n|---|---|---|---|---|---|---|---|')
    baseline = library_loop(args.model, data, args.requests, args.max_seconds)
    print(row(baseline, None), flush=True)
    loop_throughput = baseline['requests_per_second']
    results = [baseline]
    with tempfile.TemporaryDirectory() as folder:
        server, url = start_server(args, os.path.join(folder, 'gallery.npz'), free_port())
        try:
            if args.endpoint == '/identify':  # a gallery to search: a few of the photos enrolled
                for i, photo in enumerate(data[:16]):
                    httpx.post(url + '/enroll', data={'name': f'person{i}'}, files={'image': photo}, timeout=120)
            asyncio.run(load(url, args.endpoint, data, 4, 8, args.max_seconds))  # warm-up
            for clients in args.clients:
                result = asyncio.run(load(url, args.endpoint, data, clients, args.requests, args.max_seconds))
                print(row(result, loop_throughput), flush=True)
                results.append(result)
            metrics = httpx.get(url + '/metrics').text
            count = float(metrics.split('facenet_batch_size_count ')[1].split()[0])
            total = float(metrics.split('facenet_batch_size_sum ')[1].split()[0])
            print(f'\nmean photos per batch over the run: {total / count:.1f} ({int(count)} batches)')
        finally:
            server.terminate()
            server.wait(60)
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump([{k: v for k, v in r.items() if k != 'latencies'} for r in results], f, indent=1)
    errors = sum(r['errors'] for r in results)
    print(f'errors: {errors}; {args.model}, {args.precision}, {os.cpu_count()} CPUs')


if __name__ == '__main__':
    main()
