"""An app served by uvicorn in a background thread of this process, on 127.0.0.1: for tests,
benchmarks and notebooks, where the app shares a model that is already loaded."""
import socket
import threading
import time

import httpx
import uvicorn


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving `app` on 127.0.0.1 in a thread; stop() is what SIGTERM does (should_exit:
    stop accepting, let in-flight requests finish, run the app's shutdown)."""

    def __init__(self, app, port=None):
        self.port = port or free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.server = uvicorn.Server(uvicorn.Config(app, host='127.0.0.1', port=self.port, log_level='warning',
                                                    access_log=False, timeout_graceful_shutdown=30))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout=30):
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + '/health', timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f'the test server on {self.url} did not start in {timeout} s')

    def stop(self, timeout=60):
        self.server.should_exit = True
        self.thread.join(timeout)
        return not self.thread.is_alive()
