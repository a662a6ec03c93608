"""The tunnel service, simulated on loopback.

In production a TCP tunnel forwards a public host:port to the machine's 443, and a UDP tunnel
forwards another public port to LiveKit's muxed UDP port. Here both are small relays in threads,
on 127.0.0.0/8 addresses only, so a test can talk to "the public address" and reach the stack:

    with TcpRelay(listen=("127.0.0.1", public), target=("127.0.0.1", 443)) as tcp: ...
    with UdpRelay(listen=("127.0.0.2", public), target=("127.0.0.1", local)) as udp: ...

They stop cleanly on exit: listeners and every relayed socket are closed, threads joined.
"""

from __future__ import annotations

import selectors
import socket
import threading
from typing import Iterable

POLL_SECONDS = 0.1
JOIN_SECONDS = 2.0
BUFFER = 65536


def free_port(host: str = "127.0.0.1", udp: bool = False) -> int:
    """A port the kernel says is free right now on host (TCP by default)."""
    from dns_server import in_stack_ranges

    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    while True:
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        if not in_stack_ranges(port):
            return port


def _check_loopback(addresses: Iterable[tuple[str, int]]) -> None:
    for host, _port in addresses:
        if not host.startswith("127."):
            raise ValueError(f"relays stay on loopback (127.0.0.0/8), not {host}")


class _Relay:
    """Lifecycle shared by both relays: a stop flag, worker threads, sockets to close."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        _check_loopback([listen, target])
        self.listen, self.target = listen, target
        self.address: tuple[str, int] = listen  # the bound address (listen port 0 -> real port)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.add(sock)
        return sock

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        sock.close()

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True,
                                  name=f"{type(self).__name__}-{self.address[1]}")
        self._threads.append(thread)
        thread.start()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(JOIN_SECONDS)


class TcpRelay(_Relay):
    """Accepts on `listen`, opens one upstream connection per client, copies both ways."""

    def start(self) -> None:
        server = self._track(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(self.listen)
        server.listen(64)
        server.settimeout(POLL_SECONDS)
        self.address = server.getsockname()
        self._spawn(self._accept, server)

    def _accept(self, server: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _peer = server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()  # like a tunnel whose backend is down: the client sees a reset
                continue
            for sock in (client, upstream):
                sock.settimeout(None)
                self._track(sock)
            self._spawn(self._pipe, client, upstream)
            self._spawn(self._pipe, upstream, client)

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(BUFFER)
                if not data:
                    break
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)  # pass the half-close on, as a TCP proxy does
        except OSError:
            pass


class UdpRelay(_Relay):
    """Datagrams from each client go to `target` through that client's own upstream socket;
    replies are sent back from the listening socket, so the client sees the public address."""

    def start(self) -> None:
        public = self._track(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        public.bind(self.listen)
        self.address = public.getsockname()
        self._spawn(self._serve, public)

    def _serve(self, public: socket.socket) -> None:
        upstreams: dict[tuple[str, int], socket.socket] = {}
        clients: dict[socket.socket, tuple[str, int]] = {}
        with selectors.DefaultSelector() as selector:
            selector.register(public, selectors.EVENT_READ)
            while not self._stop.is_set():
                try:
                    events = selector.select(POLL_SECONDS)
                except (OSError, ValueError):
                    return
                for key, _mask in events:
                    sock = key.fileobj
                    try:
                        if sock is public:
                            data, client = public.recvfrom(BUFFER)
                            upstream = upstreams.get(client)
                            if upstream is None:
                                upstream = self._track(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                                upstream.bind((self.target[0], 0))
                                upstream.connect(self.target)
                                upstreams[client], clients[upstream] = upstream, client
                                selector.register(upstream, selectors.EVENT_READ)
                            upstream.send(data)
                        else:
                            data = sock.recv(BUFFER)
                            public.sendto(data, clients[sock])
                    except ConnectionRefusedError:
                        continue  # ICMP port unreachable from the target: drop, like UDP does
                    except OSError:
                        if self._stop.is_set():
                            return
