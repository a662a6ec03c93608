"""A small WebSocket/HTTPS client for tests: connect to 127.0.0.1:PORT but present the public
names the product serves (TLS SNI and the Host header can differ, e.g. SNI `tcp-host.test`,
Host `tcp-host.test:19055`), and skip certificate checks (Caddy's internal CA is self-signed).

    websocket_first_message(port, sni="tcp-host.test", host="tcp-host.test:19055", path="/lk-ws/rtc")
    https_request(port, sni="tcp-host.test", host="tcp-host.test:19055", path="/v1/meetings")
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
import struct
from dataclasses import dataclass

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WebSocketError(AssertionError):
    """The server did not speak WebSocket as RFC 6455 says."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    peer_cert: bytes | None = None  # DER of the server certificate (TLS only)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def _connect(port: int, sni: str | None, ip: str, timeout: float, tls: bool) -> socket.socket:
    raw = socket.create_connection((ip, port), timeout=timeout)
    if not tls:
        return raw
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])  # an Upgrade needs HTTP/1.1, not h2
    try:
        return context.wrap_socket(raw, server_hostname=sni)  # None: no SNI at all
    except Exception:
        raw.close()
        raise


def _read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status line and headers; returns the bytes read past them too."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise WebSocketError(f"connection closed before the response head: {data[:200]!r}")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("iso-8859-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise WebSocketError(f"not an HTTP response: {lines[0]!r}") from None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def _recv_exact(sock: socket.socket, buffer: bytes, size: int) -> tuple[bytes, bytes]:
    while len(buffer) < size:
        chunk = sock.recv(65536)
        if not chunk:
            raise WebSocketError("connection closed inside a WebSocket frame")
        buffer += chunk
    return buffer[:size], buffer[size:]


def websocket_first_message(port: int, *, sni: str | None, host: str, path: str = "/",
                            ip: str = "127.0.0.1", tls: bool = True, timeout: float = 10) -> str:
    """Upgrade to WebSocket on `path`, check the 101 and its Sec-WebSocket-Accept, and return
    the first text message the server sends."""
    key = base64.b64encode(os.urandom(16)).decode()
    expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
    with _connect(port, sni, ip, timeout, tls) as sock:
        sock.sendall(request.encode())
        status, headers, rest = _read_head(sock)
        if status != 101:
            raise WebSocketError(f"expected 101 Switching Protocols, got {status} {headers}: {rest[:200]!r}")
        if headers.get("upgrade", "").lower() != "websocket":
            raise WebSocketError(f"101 without Upgrade: websocket: {headers}")
        if headers.get("sec-websocket-accept") != expected:
            raise WebSocketError(f"Sec-WebSocket-Accept {headers.get('sec-websocket-accept')!r}, "
                                 f"expected {expected!r}")
        head, rest = _recv_exact(sock, rest, 2)
        fin, opcode, masked, length = head[0] & 0x80, head[0] & 0x0F, head[1] & 0x80, head[1] & 0x7F
        if length == 126:
            extended, rest = _recv_exact(sock, rest, 2)
            length = struct.unpack("!H", extended)[0]
        elif length == 127:
            extended, rest = _recv_exact(sock, rest, 8)
            length = struct.unpack("!Q", extended)[0]
        if masked:
            raise WebSocketError("a server must not mask its frames (RFC 6455 5.1)")
        if opcode != 0x1 or not fin:
            raise WebSocketError(f"expected one final text frame, got opcode {opcode:#x} fin={bool(fin)}")
        payload, _ = _recv_exact(sock, rest, length)
        return payload.decode("utf-8")


def https_request(port: int, *, sni: str | None, host: str, path: str = "/", method: str = "GET",
                  ip: str = "127.0.0.1", tls: bool = True, timeout: float = 10) -> Response:
    """One HTTP/1.1 request (Connection: close), the whole response body read."""
    request = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    with _connect(port, sni, ip, timeout, tls) as sock:
        cert = sock.getpeercert(binary_form=True) if tls else None
        sock.sendall(request.encode())
        status, headers, body = _read_head(sock)
        while True:
            try:
                chunk = sock.recv(65536)
            except ssl.SSLError:  # some servers close without close_notify
                break
            if not chunk:
                break
            body += chunk
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return Response(status, headers, body, cert)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2:]
    return out
