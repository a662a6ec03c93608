"""A real browser for the engine tests: Debian's chromium, driven from Python by Playwright.

Playwright (PyPI) rather than Selenium: one dependency with no driver binary to match to the
browser (it speaks CDP to /usr/bin/chromium through `executable_path`; its own browser download
is not reachable here), and it reports every failed request, HTTP error and console message,
which is what a test must collect to say "nothing failed".

The browser reaches the tunnel's public host name as a participant's would, resolved by
chromium's own host rules to the loopback relay that stands for the tunnel. It meets Caddy's
internal certificate either as a participant who clicks through the warning once, or as one
who trusts Caddy's root CA (see Browser). No other network is reachable: background networking
is off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = Path(os.environ.get("COMPOSE_TUNNEL_CHROMIUM", "/usr/bin/chromium"))
# The flags the machine's own probe found needed here: as root no sandbox; no GPU; no
# connections of its own to Google's services (this machine's network refuses them).
CHROMIUM_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage")


class BrowserUnavailable(Exception):
    """chromium or Playwright is missing (tests/system-deps.sh and the test extra install them)."""


@dataclass
class Problem:
    """One thing that went wrong in the page: a request that failed or answered >= 400, or a
    console error, with the URL it concerns."""

    kind: str  # "request failed" | "http NNN" | "console error" | "page error"
    url: str
    text: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.url} {self.text}".strip()


@dataclass
class Socket:
    """A WebSocket the page opened: how many frames it got, whether it closed."""

    url: str
    frames_received: int = 0
    closed: bool = False


@dataclass
class Recorder:
    """Everything a page did that a user would call broken, every response body seen (to prove
    no secret reached the browser) and every WebSocket it opened.

    Not a problem: a request the page itself cancelled, i.e. a fetch of the Next.js router (its
    `RSC` header) aborted because the page navigated on before it finished (route prefetches of
    the links on screen). Those are kept apart in `cancelled`."""

    problems: list[Problem] = field(default_factory=list)
    bodies: list[tuple[str, bytes]] = field(default_factory=list)
    sockets: list[Socket] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def attach(self, page) -> None:  # noqa: ANN001 - a playwright Page
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        page.on("console", self._console)
        page.on("websocket", self._websocket)
        page.on("pageerror", lambda error: self.problems.append(
            Problem("page error", page.url, str(error))))

    def _failed(self, request) -> None:  # noqa: ANN001
        failure = request.failure or ""
        first = request
        while first.redirected_from is not None:  # a prefetch the middleware sent to /login
            first = first.redirected_from
        if failure == "net::ERR_ABORTED" and first.headers.get("rsc") == "1":
            self.cancelled.append(request.url)
            return
        self.problems.append(Problem("request failed", request.url, failure))

    def _websocket(self, socket) -> None:  # noqa: ANN001 - a playwright WebSocket
        record = Socket(socket.url)
        self.sockets.append(record)

        def received(_payload) -> None:  # noqa: ANN001
            record.frames_received += 1

        def closed(_socket) -> None:  # noqa: ANN001
            record.closed = True

        socket.on("framereceived", received)
        socket.on("close", closed)
        socket.on("socketerror", lambda error: self.problems.append(
            Problem("websocket error", socket.url, str(error))))

    def _response(self, response) -> None:  # noqa: ANN001
        if response.status >= 400:
            self.problems.append(Problem(f"http {response.status}", response.url, ""))
        try:
            self.bodies.append((response.url, response.body()))
        except Exception:  # noqa: BLE001 - a redirect or a stream has no body to read
            pass

    def _console(self, message) -> None:  # noqa: ANN001
        if message.type == "error":
            location = message.location.get("url", "") if message.location else ""
            self.problems.append(Problem("console error", location, message.text))

    def unexplained(self, explained: dict[str, str]) -> list[Problem]:
        """Problems whose text matches none of `explained` (substring -> the reason it is
        expected with a stand-in)."""
        return [problem for problem in self.problems
                if not any(pattern in str(problem) for pattern in explained)]

    def clear(self) -> None:
        self.problems.clear()
        self.bodies.clear()
        self.sockets.clear()
        self.cancelled.clear()


class Chromium:
    """The Playwright driver (one per thread: its sync API allows no second one) that launches
    chromium browsers; a context manager."""

    def __enter__(self) -> "Chromium":
        if not CHROMIUM.exists():
            raise BrowserUnavailable(f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise BrowserUnavailable("Playwright is missing (pip install -e '.[test]')") from None
        self._playwright = sync_playwright().start()
        return self

    def __exit__(self, *_exc) -> None:  # noqa: ANN002
        self._playwright.stop()

    def launch(self, resolve: dict[str, str], trusted_ca: bytes | None = None) -> "Browser":
        return Browser(self._playwright, resolve, trusted_ca)


class Browser:
    """One chromium; `context()` gives a fresh profile (cookies) each time.

    Without `trusted_ca` the browser is a participant who clicked through the certificate
    warning (Playwright's `ignore_https_errors`). With it (PEM), the CA is in the browser's own
    trust store (an NSS database in its HOME, made with Debian's certutil), as for a user who
    installed Caddy's root certificate: no certificate error is ignored, none may occur."""

    def __init__(self, playwright, resolve: dict[str, str],  # noqa: ANN001 - Playwright's
                 trusted_ca: bytes | None = None) -> None:
        self.trusting = trusted_ca is not None
        self._home = tempfile.TemporaryDirectory(prefix="ct-browser-home-")
        try:
            if trusted_ca is not None:
                _trust(Path(self._home.name), trusted_ca)
            rules = ", ".join(f"MAP {name} {address}" for name, address in resolve.items())
            self._browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True,
                args=[*CHROMIUM_FLAGS, f"--host-resolver-rules={rules}"],
                env={"HOME": self._home.name, "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        except Exception:
            self._home.cleanup()
            raise

    @property
    def version(self) -> str:
        return self._browser.version

    def context(self):  # noqa: ANN201 - a playwright BrowserContext
        return self._browser.new_context(ignore_https_errors=not self.trusting)

    def close(self) -> None:
        self._browser.close()
        self._home.cleanup()


def _trust(home: Path, ca_pem: bytes) -> None:
    """An NSS database in HOME/.pki/nssdb (where chromium on Linux reads the user's trusted
    certificates) holding `ca_pem` as a trusted TLS root."""
    certutil = shutil.which("certutil")
    if certutil is None:
        raise BrowserUnavailable("certutil is missing (Debian: apt-get install libnss3-tools)")
    database = home / ".pki" / "nssdb"
    database.mkdir(parents=True)
    (home / "ca.pem").write_bytes(ca_pem)
    for args in (["-N", "--empty-password"],
                 ["-A", "-t", "C,,", "-n", "compose-tunnel test CA", "-i", str(home / "ca.pem")]):
        done = subprocess.run([certutil, "-d", f"sql:{database}", *args], capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise BrowserUnavailable(f"certutil {args[0]} failed: {done.stderr.strip()}")
