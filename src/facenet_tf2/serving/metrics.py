"""The service's counters and histograms, written in Prometheus' text exposition format."""
import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Histogram:
    def __init__(self, buckets):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value):
        self.total += 1
        self.sum += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1

    def lines(self, name, labels=''):
        out = []
        for bound, count in zip(self.buckets, self.counts):
            out.append(f'{name}_bucket{{{labels}{"," if labels else ""}le="{bound}"}} {count}')
        braces = f'{{{labels}}}' if labels else ''
        out += [f'{name}_bucket{{{labels}{"," if labels else ""}le="+Inf"}} {self.total}',
                f'{name}_sum{braces} {self.sum:.6f}', f'{name}_count{braces} {self.total}']
        return out


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self.requests = defaultdict(int)  # (endpoint, status) -> count
        self.latency = defaultdict(lambda: Histogram(LATENCY_BUCKETS))
        self.batch_sizes = Histogram(BATCH_BUCKETS)
        self.batch_seconds = Histogram(LATENCY_BUCKETS)
        self.faces = 0

    def request(self, endpoint, status, seconds):
        with self._lock:
            self.requests[endpoint, status] += 1
            self.latency[endpoint].observe(seconds)

    def batch(self, size, seconds):
        with self._lock:
            self.batch_sizes.observe(size)
            self.batch_seconds.observe(seconds)

    def faces_found(self, count):
        with self._lock:
            self.faces += count

    def text(self, gauges):
        """The exposition text; gauges: {name: (help, value)} sampled by the caller."""
        with self._lock:
            lines = ['# HELP facenet_requests_total HTTP requests by endpoint and status.',
                     '# TYPE facenet_requests_total counter']
            lines += [f'facenet_requests_total{{endpoint="{endpoint}",status="{status}"}} {count}'
                      for (endpoint, status), count in sorted(self.requests.items())]
            lines += ['# HELP facenet_errors_total HTTP requests answered with a 4xx or 5xx status.',
                      '# TYPE facenet_errors_total counter']
            errors = defaultdict(int)
            for (endpoint, status), count in self.requests.items():
                if status >= 400:
                    errors[endpoint, 'client' if status < 500 else 'server'] += count
            lines += [f'facenet_errors_total{{endpoint="{endpoint}",kind="{kind}"}} {count}'
                      for (endpoint, kind), count in sorted(errors.items())]
            lines += ['# HELP facenet_request_seconds Request latency.', '# TYPE facenet_request_seconds histogram']
            for endpoint, histogram in sorted(self.latency.items()):
                lines += histogram.lines('facenet_request_seconds', f'endpoint="{endpoint}"')
            lines += ['# HELP facenet_batch_size Photos per detector call.',
                      '# TYPE facenet_batch_size histogram', *self.batch_sizes.lines('facenet_batch_size'),
                      '# HELP facenet_batch_seconds Time of one detector batch.',
                      '# TYPE facenet_batch_seconds histogram', *self.batch_seconds.lines('facenet_batch_seconds'),
                      '# HELP facenet_faces_total Faces detected.', '# TYPE facenet_faces_total counter',
                      f'facenet_faces_total {self.faces}']
        for name, (text, value) in gauges.items():
            lines += [f'# HELP {name} {text}', f'# TYPE {name} gauge', f'{name} {value}']
        return '\n'.join(lines) + '\n'
