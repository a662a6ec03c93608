"""One HTTP(S) request to an address, bounded in time, telling how it failed when it did.

`doctor` asks the public tunnel address for what only this install's Caddy serves, reaching it
at an address resolved with the configured resolver (not the system's), with the tunnel's host
name as SNI and Host. It needs to tell apart "refused" (nothing listens: the tunnel agent is not
running), "timed out", "reset" (a tunnel whose backend is down) and an answer. The certificate
is not verified: Caddy's internal CA is trusted by nobody, and the answer's content is the proof.
Only the standard library: this is a few lines of HTTP/1.1.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

REFUSED, TIMEOUT, RESET, TLS = "refused", "timed out", "reset", "TLS handshake failed"


@dataclass(frozen=True)
class HttpAnswer:
    status: int | None  # None: no answer, see `failure`
    body: str = ""
    failure: str | None = None  # REFUSED, TIMEOUT, RESET, TLS or another reason
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200

    def describe(self) -> str:
        if self.status is not None:
            return f"HTTP {self.status}"
        return self.failure + (f" ({self.detail})" if self.detail else "")


def request(address: tuple[str, int], path: str, *, host: str, tls: bool, timeout: float,
            server_name: str | None = None, headers: dict[str, str] | None = None) -> HttpAnswer:
    """GET `path` from `address` (ip, port): Host `host`, SNI `server_name` (with `tls`); the
    whole exchange within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection(address, timeout=timeout)
    except ConnectionRefusedError:
        return HttpAnswer(None, failure=REFUSED)
    except (socket.timeout, TimeoutError):
        return HttpAnswer(None, failure=TIMEOUT)
    except OSError as error:
        return HttpAnswer(None, failure=error.strerror or str(error))
    try:
        if tls:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the answer's content is the proof, not the CA
            try:
                sock = context.wrap_socket(sock, server_hostname=server_name)
            except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as error:
                return HttpAnswer(None, failure=RESET if _is_reset(error) else TLS,
                                  detail="" if _is_reset(error) else str(error)[:80])
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close", "User-Agent: compose-tunnel"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if len(data) > 1 << 20:
                break
    except (socket.timeout, TimeoutError):
        return HttpAnswer(None, failure=TIMEOUT)
    except OSError as error:
        if _is_reset(error):
            return HttpAnswer(None, failure=RESET)
        return HttpAnswer(None, failure=error.strerror or str(error))
    finally:
        sock.close()
    return _parse(data)


def _is_reset(error: BaseException) -> bool:
    import ssl

    return isinstance(error, (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError)) or (
        "EOF" in str(error) or "reset" in str(error).lower())


def _parse(data: bytes) -> HttpAnswer:
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return HttpAnswer(None, failure=RESET if not data else "not HTTP",
                          detail=status_line[:60] if data else "closed without an answer")
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    return HttpAnswer(int(parts[1]), body.decode("utf-8", "replace"))


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out
