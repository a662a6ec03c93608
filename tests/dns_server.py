"""A real DNS server for tests: dnsmasq on 127.0.0.1 and a free port, answering what a test sets.

Names under the `local` domains (default: test) that no record defines get an authoritative
NXDOMAIN; names outside every configured domain get REFUSED, since dnsmasq runs with no upstream.
`forward` sends a domain to another server (ip, port), e.g. a dead one, so that queries for it go
unanswered: dnsmasq then stays silent rather than answering SERVFAIL. `hosts_file` is read as
more records ("IP NAME" lines); write it anew and call `reload()` to change an answer while
dnsmasq runs (on SIGHUP it reads the file again), as a tunnel's DNS changes under a running stack.

    with running_dnsmasq(a={"udp.test": "192.0.2.7"}) as server:
        resolve_ipv4("udp.test", dns_server=server.address)

or, in a test, the `dnsmasq` fixture: `server = dnsmasq(a=..., aaaa=..., cname=...)`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import pytest

from compose_tunnel.plan import MEDIA_RANGE
from compose_tunnel.reflector import WEBRTC_PORT_RANGE

HOST = "127.0.0.1"
START_TIMEOUT = 10.0


@dataclass(frozen=True)
class DnsServer:
    host: str
    port: int
    log_file: Path  # dnsmasq's log, every query included: read it when a test fails
    pid: int = 0

    @property
    def address(self) -> tuple[str, int]:
        """As `resolve_ipv4(dns_server=...)` takes it."""
        return self.host, self.port

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def reload(self) -> None:
        """Read the hosts file again (SIGHUP), and wait until the answers come from it."""
        import signal

        before = self.log().count("read ")
        os.kill(self.pid, signal.SIGHUP)
        deadline = time.monotonic() + START_TIMEOUT
        while self.log().count("read ") <= before and time.monotonic() < deadline:
            time.sleep(0.05)


def dnsmasq_binary() -> str | None:
    """Debian installs dnsmasq in /usr/sbin, which is not on a normal user's PATH."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which("dnsmasq", path=path)


@contextmanager
def running_dnsmasq(
    *,
    a: Mapping[str, str | Iterable[str]] = {},
    aaaa: Mapping[str, str | Iterable[str]] = {},
    cname: Mapping[str, str] = {},
    local: Iterable[str] = ("test",),
    forward: Mapping[str, tuple[str, int]] = {},
    hosts_file: Path | None = None,
) -> Iterator[DnsServer]:
    """Run dnsmasq until the block ends; it answers by the time the block starts.

    a/aaaa: name -> address(es); cname: alias -> target (chains allowed, the target must be a
    record here); local: domains answered only from these records; forward: domain -> (ip, port).
    """
    binary = dnsmasq_binary()
    if binary is None:
        pytest.skip("dnsmasq is not installed (Debian: dnsmasq-base; tests/system-deps.sh installs it)")
    records = [f"--host-record={name},{ip}" for table in (a, aaaa) for name, ips in table.items()
               for ip in ([ips] if isinstance(ips, str) else ips)]
    records += [f"--cname={alias},{target}" for alias, target in cname.items()]
    records += [f"--local=/{domain}/" for domain in local]
    records += [f"--server=/{domain}/{ip}#{port}" for domain, (ip, port) in forward.items()]
    records += [f"--addn-hosts={hosts_file}"] if hosts_file else []
    with tempfile.TemporaryDirectory(prefix="dnsmasq-") as tmp:
        log_file = Path(tmp) / "dnsmasq.log"
        for _attempt in range(3):  # the free port may be taken between choosing and binding it
            port = free_port()
            with open(log_file, "w") as log:
                process = subprocess.Popen(
                    [binary, *_base_args(port), *records], stdout=log, stderr=subprocess.STDOUT
                )
            try:
                if _wait_until_answering(process, port):
                    yield DnsServer(HOST, port, log_file, process.pid)
                    return
            finally:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if "Address already in use" not in log_file.read_text(errors="replace"):
                break
        raise RuntimeError(f"dnsmasq did not start:\n{log_file.read_text(errors='replace')}")


@pytest.fixture
def dnsmasq() -> Iterator[Callable[..., DnsServer]]:
    """Start dnsmasq servers configured by the test, `dnsmasq(a={...})`; all stop at teardown."""
    with ExitStack() as stack:
        yield lambda **records: stack.enter_context(running_dnsmasq(**records))


# Ranges the stack publishes on every address (the server's WebRTC, LiveKit's media): a test
# server there would keep the stack from starting.
STACK_RANGES = (WEBRTC_PORT_RANGE, MEDIA_RANGE)


def in_stack_ranges(port: int) -> bool:
    return any(low <= port <= high for low, high in STACK_RANGES)


def free_port() -> int:
    """A loopback port free for both UDP and TCP right now (dnsmasq binds both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port = udp.getsockname()[1]
            if in_stack_ranges(port):
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((HOST, port))
                except OSError:
                    continue
                return port


def _base_args(port: int) -> list[str]:
    return [
        "--keep-in-foreground",  # stay our child, so terminate() stops it
        f"--port={port}",
        f"--listen-address={HOST}",
        "--bind-interfaces",  # bind 127.0.0.1 only, never the wildcard (port 53 may be taken)
        "--no-resolv",  # no upstream from /etc/resolv.conf: only the test's records exist
        "--no-hosts",  # nor the machine's /etc/hosts
        "--conf-file=/dev/null",  # nor /etc/dnsmasq.conf
        "--user=root",  # as root, stay root: dropping to `nobody` fails in some sandboxes
        "--pid-file=",  # no pid file in /run
        "--log-facility=-",  # log to stderr (our log file) rather than syslog
        "--log-queries",
    ]


def _wait_until_answering(process: subprocess.Popen, port: int) -> bool:
    """True once dnsmasq answers a query; False if it exits first (e.g. its port was taken)."""
    query = dns.message.make_query("ready.invalid.", "A")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            dns.query.udp(query, HOST, port=port, timeout=0.1)
            return True
        except (dns.exception.Timeout, OSError):
            continue
    raise RuntimeError(f"dnsmasq did not answer on {HOST}:{port} within {START_TIMEOUT:g} s")
