"""Carrying out a replacement plan (replacements.py) on one machine's engine, the way
docker-rollout does it: `docker compose up --no-recreate --scale SERVICE=2N SERVICE` starts N
new containers beside the N old ones, they are waited for, then the old ones are retired.

Retiring a container: its restart policy is turned off (a container that exits by itself must
not come back), the process that serves is sent SIGTERM so it finishes what it is doing (the
API and the web answer their requests in flight and close their listeners, so Caddy's next
dial falls through to the new container; a Celery worker ends its running task: warm
shutdown), the container is given its drain time to exit, then it is stopped and removed.
When the container's PID 1 is a shell, it is the shell's children that get the signal: a
shell script that runs the server without `exec` (Reflector's runserver.sh) passes no signal
on, and as PID 1 it ignores SIGTERM, so `docker stop` alone would wait and then kill.

A new container that fails (exits, restarts, turns unhealthy, or is not ready in time) is
removed and the old ones keep serving: StartFailed with its last log lines.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .errors import EngineError, last_line
from .replacements import ROLL, START, Image, Plan, Replacement, Running
from .stack import LOG_TAIL_LINES, StartFailed

if TYPE_CHECKING:
    from .stack import Stack

Say = Callable[[str], None]

POLL_SECONDS = 0.25
READY_WITHOUT_HEALTHCHECK_SECONDS = 10.0  # running this long, unrestarted: ready (docker-rollout's wait)
STOP_TIMEOUT_SECONDS = 10.0  # Docker's default when a container sets none
BRIDGE_FILE = "rollout-bridge.yml"  # a transient overlay in the workdir (see bridge_overlay)
SHELLS = ("sh", "bash", "dash", "ash")
PROJECT_LABEL, SERVICE_LABEL = "com.docker.compose.project", "com.docker.compose.service"
HASH_LABEL, ONEOFF_LABEL = "com.docker.compose.config-hash", "com.docker.compose.oneoff"

# Run in a container to retire: the pids to send SIGTERM, or "1" (PID 1 handles it). PID 1 is a
# shell when its program (/proc/1/exe; a script's comm is the script's name) or its comm (a
# multi-call binary's `sh`) is one.
SIGNAL_TARGETS = (
    'exe=$(readlink /proc/1/exe 2>/dev/null); read -r comm < /proc/1/comm; '
    'case "${exe##*/} $comm" in ' + "|".join(f"{shell}\\ *|*\\ {shell}" for shell in SHELLS)
    + ') ;; *) echo 1; exit 0;; esac; '
    'cat /proc/1/task/1/children 2>/dev/null || echo 1'
)

FAILED_HINT = ("the old containers keep serving; `compose-tunnel logs SERVICE` shows more, and "
               "`compose-tunnel upgrade` tries again once the image is fixed")


@dataclass(frozen=True)
class Pulled:
    image: str
    outcome: str  # "new", "up to date", "failed"
    detail: str = ""


class Rollout:
    """Replacements on `stack`'s project; `say` reports progress, `wait_seconds` bounds each
    wait for new containers."""

    def __init__(self, stack: "Stack", say: Say, wait_seconds: float) -> None:
        self.stack = stack
        self.say = say
        self.wait_seconds = wait_seconds

    # ---- the engine ---------------------------------------------------------------------

    @cached_property
    def docker_cmd(self) -> list[str]:
        return [str(part) for part in self.stack.client.client_config.docker_cmd]

    @cached_property
    def compose_cmd(self) -> list[str]:
        return [str(part) for part in self.stack.client.compose.docker_compose_cmd]

    def _run(self, command: list[str], input: str | None = None) -> str:
        from python_on_whales.exceptions import DockerException
        from python_on_whales.utils import run

        try:
            return run(command, input=input.encode() if input is not None else None) or ""
        except DockerException as error:
            raise EngineError(f"`{' '.join(command[:2] + command[-3:])}` failed: "
                              f"{last_line(error.stderr) or 'no output'}") from None

    def _docker(self, *args: str) -> str:
        return self._run([*self.docker_cmd, *args])

    def _compose(self, *args: str, files: tuple[str, ...] = ()) -> str:
        overlays = [word for path in files for word in ("--file", path)]
        return self._run([*self.compose_cmd, *overlays, *args])

    def _inspect(self, names: list[str], kind: str = "container") -> list[dict[str, Any]]:
        """`docker inspect` of those that exist (the others are left out, not an error)."""
        import subprocess

        if not names:
            return []
        done = subprocess.run([*self.docker_cmd, kind, "inspect", *names], capture_output=True, text=True)
        try:
            return json.loads(done.stdout or "[]")
        except ValueError:
            return []

    # ---- facts --------------------------------------------------------------------------

    def containers(self) -> list[Running]:
        ids = self._docker("ps", "--all", "--quiet", "--no-trunc", "--filter",
                           f"label={PROJECT_LABEL}={self.stack.project_name}").split()
        return [running_of(row) for row in self._inspect(ids)]

    def wanted_hashes(self) -> dict[str, str]:
        """Compose's configuration hash of each service as the files say now, as `up` computes
        it for the label it puts on a container. `config --hash` alone hashes a service without
        reading its env_file (Compose #14001, since 2.22), while `up` hashes it with the file's
        variables in its `environment`: so the hash is taken of `config`'s own output, where
        they are (and the variables' files changed count as a changed configuration)."""
        resolved = self._compose("config")
        hashed = self._run([*self.docker_cmd, "compose", "--project-name", self.stack.project_name,
                            "--project-directory", str(self.stack.project_dir), "--file", "-",
                            "config", "--hash", "*"], input=resolved)
        hashes = {}
        for line in hashed.splitlines():
            service, _, digest = line.strip().partition(" ")
            if digest:
                hashes[service] = digest
        return hashes

    def images(self, names: list[str]) -> dict[str, Image | None]:
        """Each image on this machine (None: not here)."""
        found: dict[str, Image | None] = {name: None for name in names}
        for row in self._inspect(list(dict.fromkeys(names)), "image"):
            image = Image(row["Id"], bool(row.get("RepoDigests")))
            for tag in row.get("RepoTags") or ():
                if tag in found:
                    found[tag] = image
            for name in names:  # a name without a tag means :latest, as Docker reads it
                if found[name] is None and f"{name}:latest" in (row.get("RepoTags") or ()):
                    found[name] = image
        return found

    # ---- pulling and building -----------------------------------------------------------

    def pull(self, images: list[str]) -> list[Pulled]:
        """Pull each image, side by side; one that fails is reported and the others go on."""
        from concurrent.futures import ThreadPoolExecutor

        before = self.images(images)

        def one(image: str) -> Pulled:
            from python_on_whales.exceptions import DockerException
            from python_on_whales.utils import run

            try:
                run([*self.docker_cmd, "pull", "--quiet", image])
            except DockerException as error:
                return Pulled(image, "failed", last_line(error.stderr) or f"exit code {error.return_code}")
            after = self.images([image])[image]
            old = before.get(image)
            return Pulled(image, "new" if after and (old is None or old.id != after.id) else "up to date")

        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(one, images))

    def build(self) -> None:
        """Build the images of the services that have a build context (their tags move)."""
        from python_on_whales.exceptions import DockerException

        try:
            self.stack.client.compose.build()
        except DockerException as error:
            raise StartFailed(f"docker compose build failed: {last_line(error.stderr) or 'see its output above'}",
                              hint="fix the build, then run `compose-tunnel rebuild` again: nothing was "
                                   "replaced") from None

    # ---- the plan -----------------------------------------------------------------------

    def run(self, plan: Plan) -> None:
        """The plan's groups in order, the migrations before any rolled service."""
        for replacement in plan.first:
            self.replace(replacement)
        for migration in plan.migrations:
            self.migrate(migration)
        for replacement in plan.rolled + plan.last:
            self.replace(replacement)

    def replace(self, replacement: Replacement) -> None:
        self.say(replacement.describe())
        began = time.monotonic()
        if replacement.how == ROLL:
            self.roll(replacement)
        else:  # START; RESTART, RECREATE: the old ones go first, then the new one comes
            for name in replacement.old if replacement.how != START else ():
                self.retire(name, replacement.policy.drain)
            self._up(replacement.service)
            self.wait_ready(self._service_containers(replacement.service), replacement.service)
        self.say(f"  {replacement.service}: done in {time.monotonic() - began:.1f}s")

    def migrate(self, replacement: Replacement) -> None:
        """The service's migrations, once, in a one-off container of its new image (Compose's
        `run`: no published ports, no name others reach it by); a failure stops here."""
        import subprocess

        command = replacement.policy.migrate
        self.say(f"{replacement.service}: migrating: {' '.join(command)}")
        done = subprocess.run([*self.compose_cmd, "run", "--rm", "--no-deps", "-T", replacement.service,
                               *command], capture_output=True, text=True)
        if done.returncode != 0:
            lines = (done.stdout + done.stderr).splitlines()[-LOG_TAIL_LINES:] or ["(no output)"]
            raise StartFailed(f"{replacement.service}: the migrations failed (exit code {done.returncode}); "
                              "nothing was replaced from here on\n"
                              + "\n".join(f"    {line}" for line in lines),
                              hint="the old containers keep serving; fix the migration or the image, then "
                                   "`compose-tunnel upgrade` again")

    def roll(self, replacement: Replacement) -> None:
        """New containers beside the old ones, ready, then the old ones retired; through a
        bridge without the fixed host ports first when the service publishes any."""
        service, old = replacement.service, list(replacement.old)
        count = len(old)
        if replacement.bridged:
            overlay = self.stack.project_dir / BRIDGE_FILE
            overlay.write_text(bridge_overlay(service))
            try:
                bridges = self.start_beside(service, old, files=(str(overlay),))
            finally:
                overlay.unlink(missing_ok=True)
            self.say(f"  {service}: bridge {', '.join(bridges)} ready (without the host ports)")
            for name in old:
                self.retire(name, replacement.policy.drain)
            old = bridges
        new = self.start_beside(service, old)
        self.say(f"  {service}: {', '.join(new)} ready")
        for name in old:
            self.retire(name, replacement.policy.drain)
        assert len(new) == count

    def start_beside(self, service: str, old: list[str], files: tuple[str, ...] = ()) -> list[str]:
        """As many new containers as `old` beside them; waited for until ready. Removed again,
        and StartFailed, when they fail."""
        try:
            self._compose("up", "--detach", "--no-deps", "--no-recreate", "--no-build", "--pull", "never",
                          "--scale", f"{service}={2 * len(old)}", service, files=files)
        except EngineError as error:
            new = [name for name in self._service_containers(service) if name not in old]
            self.remove(new)
            raise StartFailed(f"{service}: the new container could not start: {error.message}",
                              hint=FAILED_HINT) from None
        new = [name for name in self._service_containers(service) if name not in old]
        try:
            self.wait_ready(new, service, note="; it is removed, the old one keeps serving")
        except StartFailed:
            self.remove(new)
            raise
        return new

    def _up(self, service: str) -> None:
        try:
            self._compose("up", "--detach", "--no-deps", "--no-build", "--pull", "never", service)
        except EngineError as error:
            raise StartFailed(f"{service}: docker compose up failed: {error.message}",
                              hint="`compose-tunnel logs` shows more; `compose-tunnel up` starts it again") from None

    def _service_containers(self, service: str) -> list[str]:
        return sorted(c.name for c in self.containers() if c.service == service and not c.oneoff)

    # ---- waiting, retiring --------------------------------------------------------------

    def wait_ready(self, names: list[str], service: str, note: str = "") -> None:
        """Until every one runs and is healthy (or, without a health check, has run
        READY_WITHOUT_HEALTHCHECK_SECONDS unrestarted). StartFailed with its last log lines
        when one exits, restarts or turns unhealthy, or at `wait_seconds`."""
        began = time.monotonic()
        while True:
            rows = {row["Name"].lstrip("/"): row for row in self._inspect(names)}
            states = {name: readiness(rows.get(name), time.time()) for name in names}
            starting = [name for name, state in states.items() if state == "starting"]
            if starting and self.stack.probes_health:  # their own check, run now (health.py)
                for name in self.stack.prober.passing(starting):
                    states[name] = "ready"
            failed = [name for name, state in states.items() if state not in ("ready", "starting", "settling")]
            late = time.monotonic() - began > self.wait_seconds
            if all(state == "ready" for state in states.values()):
                return
            if failed or late:
                culprit = failed[0] if failed else next(n for n, s in states.items() if s != "ready")
                reason = states[culprit] if failed else f"not ready after {self.wait_seconds:.0f}s"
                raise StartFailed(f"{service}: the new container {culprit} {reason}{note}\n"
                                  + "\n".join(f"    {line}" for line in self.log_tail(culprit)),
                                  hint=FAILED_HINT)
            time.sleep(POLL_SECONDS)

    def retire(self, name: str, drain: float | None = None) -> None:
        """Stop it gently (see the module's docstring) and remove it."""
        row = next(iter(self._inspect([name])), None)
        if row is None:
            return
        if (row.get("State") or {}).get("Running"):
            self._docker("update", "--restart", "no", name)
            timeout = drain or (row.get("Config") or {}).get("StopTimeout") or STOP_TIMEOUT_SECONDS
            self._signal(name)
            deadline = time.monotonic() + float(timeout)
            while time.monotonic() < deadline:
                state = next(iter(self._inspect([name])), {}).get("State") or {}
                if not state.get("Running"):
                    break
                time.sleep(POLL_SECONDS)
            else:
                self.say(f"  {name}: still running after {float(timeout):.0f}s: stopped")
        self.remove([name])

    def _signal(self, name: str) -> None:
        """SIGTERM to what serves in it: PID 1, or a shell's children (SIGNAL_TARGETS)."""
        import subprocess

        found = subprocess.run([*self.docker_cmd, "exec", name, "sh", "-c", SIGNAL_TARGETS],
                               capture_output=True, text=True)
        pids = found.stdout.split() if found.returncode == 0 else []
        if not pids or pids == ["1"]:  # no shell to ask in it: as `docker stop` does
            subprocess.run([*self.docker_cmd, "kill", "--signal", "TERM", name], capture_output=True)
        else:
            subprocess.run([*self.docker_cmd, "exec", name, "sh", "-c", 'kill -TERM "$@"', "sh", *pids],
                           capture_output=True)  # the shell's own kill: an image may have no kill(1)

    def remove(self, names: list[str]) -> None:
        if names:
            self._docker("rm", "--force", *names)

    def log_tail(self, name: str, lines: int = LOG_TAIL_LINES) -> list[str]:
        import subprocess

        done = subprocess.run([*self.docker_cmd, "logs", "--tail", str(lines), name],
                              capture_output=True, text=True)
        text = (done.stdout + done.stderr).splitlines()
        return text[-lines:] or ["(no output)"]


def running_of(row: Mapping[str, Any]) -> Running:
    """A container's facts from `docker inspect`."""
    labels = (row.get("Config") or {}).get("Labels") or {}
    return Running(
        name=row.get("Name", "").lstrip("/"),
        service=labels.get(SERVICE_LABEL, ""),
        image_id=row.get("Image", ""),
        config_hash=labels.get(HASH_LABEL, ""),
        running=bool((row.get("State") or {}).get("Running")),
        oneoff=labels.get(ONEOFF_LABEL) == "True",
    )


def readiness(row: Mapping[str, Any] | None, now: float) -> str:
    """"ready", "starting" (its health check has not passed yet), "settling" (no health check,
    not running long enough), or why it failed."""
    if row is None:
        return "is gone"
    state = row.get("State") or {}
    if row.get("RestartCount") or state.get("Restarting"):
        return "restarted (it exits)"
    if not state.get("Running"):
        return f"exited with code {state.get('ExitCode')}"
    health = (state.get("Health") or {}).get("Status")
    if health == "healthy":
        return "ready"
    if health == "unhealthy":
        return "turned unhealthy"
    if health:
        return "starting"
    started = parse_time(state.get("StartedAt", ""))
    return "ready" if started and now - started >= READY_WITHOUT_HEALTHCHECK_SECONDS else "settling"


def parse_time(text: str) -> float | None:
    """Docker's RFC 3339 time with nanoseconds, as seconds since the epoch."""
    from datetime import datetime

    if not text or text.startswith("0001-"):
        return None
    head, _, rest = text.partition(".")
    zone = rest.lstrip("0123456789") if rest else text[19:]
    try:
        moment = datetime.fromisoformat(head + (zone.replace("Z", "+00:00") or "+00:00"))
    except ValueError:
        return None
    return moment.timestamp()


def bridge_overlay(service: str) -> str:
    """The overlay a bridge container of `service` is made with: no host ports."""
    return (f"# compose-tunnel upgrade: a bridge container of {service} without host ports.\n"
            f"services:\n  {service}:\n    ports: !reset []\n")
