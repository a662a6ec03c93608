"""A container's own health check, run when `up` waits for it.

Docker runs a health check once per `interval` (10 s for Postgres and Redis, 5 s for Hatchet
in the profiles), so a service ready after one second is reported healthy up to an interval
later; Docker 25's `start_interval` shortens that, older engines have no such setting. While
a container is `starting`, `up` runs the same check itself (the same command, `docker exec`
in the same container, the check's own timeout) and counts the container ready once it
passes. Docker's own status still gates what Compose starts with dependency conditions.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from typing import Iterable

DEFAULT_TIMEOUT_SECONDS = 30.0  # Docker's default for a check without one
PROBE_EVERY_SECONDS = 0.5  # at most this often per container


@dataclass(frozen=True)
class HealthCheck:
    command: tuple[str, ...]  # what `docker exec CONTAINER` runs
    timeout: float


def parse_healthcheck(config: dict | None) -> HealthCheck | None:
    """Docker's `.Config.Healthcheck` (inspect): the command to run, or None (no check, NONE)."""
    if not config:
        return None
    test = config.get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        command = tuple(test[1:])
    elif test[0] == "CMD-SHELL":
        command = ("/bin/sh", "-c", " ".join(test[1:]))
    else:  # the inherited [] or an unknown form: Docker's own check decides
        return None
    if not command:
        return None
    timeout = (config.get("Timeout") or 0) / 1e9 or DEFAULT_TIMEOUT_SECONDS
    return HealthCheck(command, timeout)


class Prober:
    """Runs the checks of `starting` containers (by name, which Compose gives them), each at
    most every PROBE_EVERY_SECONDS; between runs a container's last result stands, as Docker's
    status does between its own (a container that restarts after passing is `starting` again,
    and passes only when its check does again)."""

    def __init__(self, docker_command: list[str]) -> None:
        self.docker = [str(part) for part in docker_command]
        self.checks: dict[str, HealthCheck | None] = {}
        self.last: dict[str, tuple[float, bool]] = {}  # container -> (when, whether it passed)

    def passing(self, containers: Iterable[str]) -> set[str]:
        """Of these containers (all `starting`), those whose last check passed, run now if the
        last is PROBE_EVERY_SECONDS old."""
        containers = list(dict.fromkeys(containers))
        unknown = [c for c in containers if c not in self.checks]
        if unknown:
            self.checks.update(self._inspect(unknown))
        now = time.monotonic()
        due = [c for c in containers if self.checks.get(c)
               and now - self.last.get(c, (-PROBE_EVERY_SECONDS, False))[0] >= PROBE_EVERY_SECONDS]
        running = []
        for container in due:  # side by side: one slow check does not hold the others
            check = self.checks[container]
            assert check is not None
            process = subprocess.Popen([*self.docker, "exec", container, *check.command],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            running.append((container, check, process))
        for container, check, process in running:
            try:
                code = process.wait(timeout=max(0.0, check.timeout - (time.monotonic() - now)) + 1.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                code = None
            self.last[container] = (now, code == 0)
        return {c for c in containers if self.last.get(c, (0.0, False))[1]}

    def _inspect(self, containers: list[str]) -> dict[str, HealthCheck | None]:
        """Their checks, in one `docker inspect`; None for those it cannot tell."""
        found: dict[str, HealthCheck | None] = {c: None for c in containers}
        try:
            out = subprocess.run([*self.docker, "container", "inspect", *containers],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return found
        try:
            rows = json.loads(out.stdout or "[]")
        except ValueError:
            return found
        for row in rows:
            check = parse_healthcheck((row.get("Config") or {}).get("Healthcheck"))
            for name in (row.get("Id", ""), row.get("Name", "").lstrip("/")):
                if name in found:
                    found[name] = check
        return found
