"""What `doctor` checks are made of: each check is a function of what the install is
(`Install`, read once) giving one `Result`: passed or not, in one line, with the fix.

The checks themselves live in enginechecks (Docker, its disk, the stack as applied),
tunnelchecks (the tunnels' addresses and both paths end to end) and appchecks (the app's own
parts); this module imports none of them. Each check is bounded in time by its own calls (the
docker CLI through dockercli, sockets with timeouts), so `doctor` can run them side by side.
The network checks resolve the tunnel's host names with the resolver the configuration names,
as `up` did when it rendered livekit.yaml.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from .dockercli import DockerCli, DockerTimeout
from .errors import UserError
from .settings import Settings
from .state import Applied, Secrets
from .workspace import Workspace

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
HTTP_TIMEOUT = 2.5


@dataclass(frozen=True)
class Result:
    name: str
    status: str  # OK, WARN (passes, with a warning), FAIL, SKIP (does not apply)
    message: str
    hint: str | None = None
    details: tuple[str, ...] = ()  # more lines: the last log lines of a failing service


@dataclass
class Install:
    """What the checks look at: the workdir's saved state and files, read once."""

    workspace: Workspace
    settings: Settings
    applied: Applied
    secrets: Secrets
    docker: DockerCli
    env: dict[str, str]  # the applied .env
    livekit: dict[str, Any] | None  # livekit.yaml as LiveKit reads it
    _resolved: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def has(self, profile: str) -> bool:
        return profile in self.applied.profiles

    @property
    def local_ip(self) -> str:
        """Where this machine publishes Caddy and LiveKit's UDP port."""
        ip = self.settings.publish_ip
        return "127.0.0.1" if ip in (None, "0.0.0.0") else ("::1" if ip == "::" else ip)

    def resolve(self, host: str) -> str:
        """`host`'s IPv4 with the configured resolver, once per run (UserError when it fails)."""
        from .tunnel import parse_dns_server, resolve_ipv4

        with self._lock:
            if host not in self._resolved:
                settings = self.settings
                try:
                    self._resolved[host] = resolve_ipv4(
                        host, dns_server=parse_dns_server(settings.dns_server) if settings.dns_server else None,
                        timeout=min(settings.dns_timeout, 2.0))
                except UserError as error:
                    self._resolved[host] = error
            found = self._resolved[host]
        if isinstance(found, UserError):
            raise found
        return found

    @property
    def public_origin(self) -> tuple[str, int] | None:
        """The HTTPS host and port participants open, or None without Caddy."""
        from .tunnel import Address

        settings = self.settings
        if settings.tunnel_tcp:
            return settings.tunnel_tcp.host, settings.tunnel_tcp.port
        if settings.domain:
            return settings.domain, 443
        if settings.ip:
            return Address(settings.ip, 443).host, 443
        return ("localhost", 443) if self.has("caddy") else None


Check = Callable[[Install], Result]


def docker_failure(name: str, error: DockerTimeout) -> Result:
    """A docker call that did not answer in time, as the check's failure."""
    return Result(name, FAIL, str(error), "is the Docker daemon overloaded or hung? `docker info` tells")


def side_by_side(*calls: Callable[[], Any]) -> list[Any]:
    """The calls' results, run at once (each is bounded in time)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def run_checked(check: Check, install: Install, name: str) -> Result:
    """A check's result; an unexpected error of the check is its failure, not a traceback."""
    try:
        return check(install)
    except DockerTimeout as error:
        return docker_failure(name, error)
    except (OSError, ValueError) as error:
        return Result(name, FAIL, f"could not check: {error}")
