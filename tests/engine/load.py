"""A bounded load generator: a browser's steady GETs through the TCP tunnel while something
replaces the stack's containers, counting every request that does not get its usual answer.

    with Load(port, sni="tcp-host.test", host="tcp-host.test:19055",
              paths=["/health", "/v1/...", "/"], max_requests=20000) as load:
        ...                                   # upgrade, rebuild
    report = load.report()                    # report.failed, report.slowest, ...

Loopback only, a fixed number of requests at most (it stops by itself when they are spent, or
when the block ends), each worker on a keep-alive HTTPS connection as a browser keeps one (a
new one after an error or a `Connection: close`). A request fails when it raises (refused,
reset, timed out) or its status differs from the one that path answered before the load began.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

REQUEST_TIMEOUT = 60.0  # longer than Caddy holds a request (lb_try_duration): its answer is seen
PAUSE = 0.02  # between a worker's requests


@dataclass(frozen=True)
class Sample:
    path: str
    started: float  # time.time()
    seconds: float
    status: int | None
    error: str = ""


@dataclass
class Report:
    requests: int
    failed: list[Sample] = field(default_factory=list)
    slowest: Sample | None = None
    by_path: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        slowest = f"{self.slowest.seconds:.3f}s ({self.slowest.path})" if self.slowest else "-"
        text = f"{self.requests} requests, {len(self.failed)} failed, slowest {slowest}"
        if self.failed:
            text += "; first failures: " + "; ".join(
                f"{s.path} {s.status or s.error}" for s in self.failed[:5])
        return text


class _Connection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1:PORT presenting SNI `sni` (the tunnel's public name), no verification
    (Caddy's internal CA)."""

    def __init__(self, port: int, sni: str) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        super().__init__("127.0.0.1", port, timeout=REQUEST_TIMEOUT, context=context)
        self._sni = sni
        self._context = context

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=REQUEST_TIMEOUT)
        self.sock = self._context.wrap_socket(raw, server_hostname=self._sni)


class Load:
    def __init__(self, port: int, *, sni: str, host: str, paths: list[str], max_requests: int,
                 workers: int = 3) -> None:
        self.port, self.sni, self.host, self.paths = port, sni, host, paths
        self.max_requests, self.workers = max_requests, workers
        self.expected: dict[str, int] = {}
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> "Load":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        """Learns each path's status first (one request each), then starts the workers."""
        connection = _Connection(self.port, self.sni)
        try:
            for path in self.paths:
                status, _ = self._get(connection, path)
                self.expected[path] = status
        finally:
            connection.close()
        for index in range(self.workers):
            thread = threading.Thread(target=self._work, args=(index,), daemon=True, name=f"load-{index}")
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT + 5)

    @property
    def done(self) -> bool:
        return self._stop.is_set() or len(self.samples) >= self.max_requests

    def _get(self, connection: _Connection, path: str) -> tuple[int, bool]:
        connection.request("GET", path, headers={"Host": self.host})
        response = connection.getresponse()
        response.read()
        return response.status, (response.getheader("connection") or "").lower() == "close"

    def _work(self, index: int) -> None:
        connection: _Connection | None = None
        turn = index
        while True:
            with self._lock:
                if self.done:
                    break
            path = self.paths[turn % len(self.paths)]
            turn += 1
            began, wall = time.monotonic(), time.time()
            status, error = None, ""
            try:
                if connection is None:
                    connection = _Connection(self.port, self.sni)
                status, close = self._get(connection, path)
                if close:
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException) as failure:
                error = f"{type(failure).__name__}: {failure}"
                if connection is not None:
                    connection.close()
                connection = None
            sample = Sample(path, wall, time.monotonic() - began, status, error)
            with self._lock:
                self.samples.append(sample)
            time.sleep(PAUSE)
        if connection is not None:
            connection.close()

    def report(self, since: float | None = None, until: float | None = None) -> Report:
        """What the requests saw (those begun between `since` and `until`, time.time(), if given)."""
        with self._lock:
            samples = [s for s in self.samples if (since is None or s.started >= since)
                       and (until is None or s.started <= until)]
        failed = [s for s in samples if s.error or s.status != self.expected.get(s.path)]
        by_path: dict[str, int] = {}
        for sample in samples:
            by_path[sample.path] = by_path.get(sample.path, 0) + 1
        slowest = max(samples, key=lambda s: s.seconds, default=None)
        return Report(len(samples), failed, slowest, by_path)
