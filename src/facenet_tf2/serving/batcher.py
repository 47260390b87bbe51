"""Dynamic batching: requests that arrive together go through the detector and the model as one batch.

A `DynamicBatcher` owns one worker thread that runs `process(items) -> results` (one result per
item, in order). `submit(item)` queues an item and returns a concurrent.futures.Future; the worker
takes the first waiting item, gathers more for at most `window` seconds or until `max_batch`
items, and runs them in one call. All model work happens on that one thread, so TensorFlow sees
one caller and the model is loaded once per process. When a batch fails, its items run again one
by one, so an item that breaks `process` fails its own future only; the worker goes on.
"""
import concurrent.futures
import queue
import threading
import time

_STOP = object()


class BatcherStopped(RuntimeError):
    """The batcher was stopped; no new work is taken."""


class DynamicBatcher:
    def __init__(self, process, max_batch=32, window=0.01, on_batch=None, name='batcher'):
        if max_batch < 1:
            raise ValueError(f'max_batch must be at least 1, got {max_batch}')
        self.process = process
        self.max_batch = max_batch
        self.window = window
        self.on_batch = on_batch  # called with each batch's size and its seconds (metrics)
        self._queue = queue.Queue()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item):
        if self._stopping:
            raise BatcherStopped('the server is shutting down')
        future = concurrent.futures.Future()
        self._queue.put((item, future))
        return future

    def stop(self, timeout=None):
        """Finishes every item already submitted, then ends the worker."""
        self._stopping = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self):
        stop = False
        while not stop:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            deadline = time.monotonic() + self.window
            while len(batch) < self.max_batch:
                try:
                    entry = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if entry is _STOP:
                    stop = True  # finish this batch first
                    break
                batch.append(entry)
            self._run_batch(batch)

    def _run_batch(self, batch):
        items = [item for item, _ in batch]
        started = time.perf_counter()
        try:
            results = self.process(items)
            if len(results) != len(items):
                raise RuntimeError(f'batch function gave {len(results)} results for {len(items)} items')
        except Exception as e:  # pylint: disable=broad-except  # it belongs to the callers
            if len(batch) > 1:  # one bad item must not fail the others: each alone, so only it fails
                for entry in batch:
                    self._run_batch([entry])
                return
            batch[0][1].set_exception(e)
            return
        finally:
            if self.on_batch is not None:
                self.on_batch(len(items), time.perf_counter() - started)
        for (_, future), result in zip(batch, results):
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
