"""The running stack, through python-on-whales (imported here only, and lazily).

A Stack is one compose project: a compose file, its variables file, a project directory and a
name. It turns Docker's failures into UserErrors a person can act on.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import EngineError, UserError, last_line
from .bootstrap import CommandResult

READY_POLL_SECONDS = 0.25
LOG_TAIL_LINES = 20
STREAM_EVERY_SECONDS = 2.0


class StartFailed(Exception):
    """Containers failed or stayed unhealthy; `report` says which and shows their logs."""

    HINT = "`compose-tunnel logs` shows more; `compose-tunnel down` stops it"

    def __init__(self, report: str, hint: str = HINT) -> None:
        super().__init__(report)
        self.report = report
        self.hint = hint


@dataclass(frozen=True)
class ServiceState:
    service: str
    container: str
    status: str  # running, exited, restarting, created, ...
    health: str | None  # healthy, unhealthy, starting, or None without a healthcheck
    exit_code: int | None = None
    detail: str | None = None  # why, when the engine says (a Swarm task's error)

    @property
    def ready(self) -> bool:
        # Docker zeroes the exit code when a container starts: `running` with one is a container
        # caught exiting (seen: `compose ps` said running, no health, exit code 3).
        return self.status == "running" and not self.exit_code and self.health in (None, "healthy")

    @property
    def failed(self) -> bool:
        return self.status in ("exited", "dead", "restarting", "rejected") or self.health == "unhealthy"

    def describe(self) -> str:
        text = self.status
        if self.health and self.status == "running":  # a stopped container's health is stale
            text += f" ({self.health})"
        if self.status == "exited" and self.exit_code is not None:
            text += f", exit code {self.exit_code}"
        if self.detail:
            text += f": {self.detail}"
        return text


def parse_compose_version(text: str) -> tuple[int, int, int]:
    match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text)
    if not match:
        raise UserError(f"cannot read the Docker Compose version from {text.strip()!r}")
    return tuple(int(part) for part in match.groups())  # type: ignore[return-value]


def compose_version_needed(compose_text: str) -> tuple[int, int, int]:
    """The oldest Compose that reads this flattened file (its tags are already resolved)."""
    needs = (2, 0, 0)
    if re.search(r"^\s+required:", compose_text, re.MULTILINE):
        needs = max(needs, (2, 24, 0))  # env_file/depends_on `required`
    if re.search(r"^include:", compose_text, re.MULTILINE):
        needs = max(needs, (2, 20, 0))
    return needs


def parse_ps_json(text: str) -> list[ServiceState]:
    """`docker compose ps --format json`: a JSON array before Compose 2.21, one object per line since."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    states = [
        ServiceState(
            service=row.get("Service") or row["Name"],
            container=row["Name"],
            status=row["State"],
            health=row.get("Health") or None,
            exit_code=row.get("ExitCode"),
        )
        for row in rows
    ]
    return sorted(states, key=lambda s: (s.service, s.container))


class Stack:
    deploys_whole = False  # Swarm: see SwarmStack
    probes_health = True  # waits run a starting container's health check themselves (health.py)

    def __init__(self, project_dir: Path, project_name: str, compose_file: Path, env_file: Path):
        self.project_dir = Path(project_dir).absolute()
        self.project_name = project_name
        self.compose_file = Path(compose_file).absolute()
        self.env_file = Path(env_file).absolute()
        self.containers: dict[str, str] = {}  # service -> its first container, as `ps` last saw

    @cached_property
    def client(self):
        from python_on_whales import DockerClient

        return DockerClient(
            compose_files=[self.compose_file],
            compose_env_files=[self.env_file],
            compose_project_name=self.project_name,
            compose_project_directory=self.project_dir,
        )

    def command_line(self, *args: str) -> str:
        """The docker compose command equivalent to a call, for --dry-run and messages."""
        words = [
            "docker", "compose", "--project-name", self.project_name,
            "--project-directory", str(self.project_dir), "--file", str(self.compose_file),
            "--env-file", str(self.env_file), *args,
        ]
        return shlex.join(words)

    def check(self, needs: tuple[int, int, int] = (2, 0, 0)) -> tuple[int, int, int]:
        """Docker installed, Compose v2 present and recent enough, the daemon reachable."""
        from python_on_whales import ClientNotFoundError, DockerException

        try:
            version = parse_compose_version(self.client.compose.version())
        except ClientNotFoundError:
            raise UserError("docker is not installed", hint="install Docker Engine and its Compose v2 plugin") from None
        except DockerException:
            raise UserError(
                "the Docker Compose v2 plugin is missing (`docker compose` does not run)",
                hint="`make venv` links one into ~/.docker/cli-plugins, or install docker-compose-plugin",
            ) from None
        if version < needs:
            raise UserError(
                f"Docker Compose {'.'.join(map(str, version))} is older than the "
                f"{'.'.join(map(str, needs))} these files need",
                hint="upgrade the Docker Compose plugin",
            )
        try:
            self.client.system.info()
        except DockerException as error:
            detail = last_line(error.stderr) or "no answer"
            raise UserError(
                f"the Docker daemon is not reachable: {detail}",
                hint="start it (e.g. `sudo systemctl start docker`) and check you may use its socket",
            ) from None
        return version

    def project(self, directory: Path | None = None) -> dict[str, Any]:
        """Compose's model of the project's files (of `directory`'s copy of them, if given)."""
        from python_on_whales import ClientNotFoundError, DockerException
        from python_on_whales.utils import run

        from .yamlio import load_compose_text

        root = directory or self.project_dir
        compose, dotenv = ((root / self.compose_file.name, root / self.env_file.name) if directory
                           else (self.compose_file, self.env_file))
        command = [*self.client.client_config.docker_cmd, "compose", "--project-name", self.project_name,
                   "--project-directory", str(root), "--file", str(compose), "--env-file", str(dotenv),
                   "config"]
        try:
            return load_compose_text(run(command) or "", "docker compose config")
        except ClientNotFoundError:
            raise UserError("docker is not installed (compose-tunnel reads the project through "
                            "`docker compose config`)", hint="install Docker Engine and its Compose v2 plugin") from None
        except DockerException as error:
            raise UserError(f"docker compose config failed: {last_line(error.stderr) or 'no output'}",
                            hint="`compose-tunnel generate` renders the files again") from None

    def up_command_line(self, *, build: bool = False, pull: str | None = None,
                        services: list[str] | None = None, dependencies: bool = True) -> str:
        """The command `up` runs with the same arguments."""
        args = ["up", "--detach", "--remove-orphans"] + (["--build"] if build else [])
        args += ["--pull", pull] if pull else []
        args += [] if dependencies else ["--no-deps"]
        return self.command_line(*args, *(services or []))

    def up(self, *, build: bool = False, pull: str | None = None, services: list[str] | None = None,
           dependencies: bool = True) -> None:
        """Start the project, or only `services` (and what they depend on, unless not
        `dependencies`: the caller knows those ready)."""
        from python_on_whales.exceptions import DockerException

        try:
            self.client.compose.up(services or None, detach=True, build=build, pull=pull,
                                   remove_orphans=True, dependencies=dependencies)
        except DockerException as error:
            missing = self.missing_images(services)
            if missing:
                cause = last_line(error.stderr) or "see docker compose's output above"
                raise StartFailed(
                    f"docker compose up failed: {len(missing)} image(s) could not be pulled or "
                    f"built: {', '.join(missing)} ({cause})",
                    hint="check the image names and this machine's network or registry login, then "
                         "run `compose-tunnel up` again: the configuration is saved") from None
            raise StartFailed(
                f"docker compose up failed (exit code {error.return_code}); see its output above\n"
                + self.failure_report()
            ) from None

    def up_alongside(self, *, build: bool = False, pull: str | None = None,
                     services: list[str]) -> Callable[..., None]:
        """Start `services` while the caller goes on (Compose runs on disjoint services side by
        side); the function returned waits until they are started, and raises what `up` raised
        unless called with report=False."""
        import threading

        failure: list[BaseException] = []

        def start() -> None:
            try:
                self.up(build=build, pull=pull, services=services)
            except BaseException as error:  # handed to the caller's thread
                failure.append(error)

        thread = threading.Thread(target=start, name="compose-up-alongside", daemon=True)
        thread.start()

        def join(report: bool = True) -> None:
            thread.join()
            if failure and report:
                raise failure[0]
        return join

    def missing_images(self, services: list[str] | None = None) -> list[str]:
        """Images of the project (or of `services`) that are not on this machine."""
        from python_on_whales.exceptions import DockerException
        from python_on_whales.utils import run

        try:
            listed = run(self.client.compose.docker_compose_cmd + ["config", "--images", *(services or [])])
        except DockerException:
            return []
        missing = []
        for image in dict.fromkeys((listed or "").split()):
            try:
                run(self.client.client_config.docker_cmd + ["image", "inspect", "--format", "x", image])
            except DockerException:
                missing.append(image)
        return missing

    def pull(self) -> None:
        """Pull newer images; services with `pull_policy: never` or a build are skipped."""
        from python_on_whales.exceptions import DockerException

        try:
            self.client.compose.pull()
        except DockerException:
            raise UserError(
                "docker compose pull failed (see its output above)",
                hint="check the network and the image names, or pass --no-pull",
            ) from None

    def down(self, *, volumes: bool = False) -> None:
        from python_on_whales.exceptions import DockerException

        try:
            self.client.compose.down(remove_orphans=True, volumes=volumes)
        except DockerException as error:
            raise UserError(
                f"docker compose down failed: {last_line(error.stderr) or 'see its output above'}"
            ) from None

    def volume_created(self, volume: str) -> str | None:
        """When the project's named volume was created (Docker's CreatedAt), or None if absent."""
        from python_on_whales.exceptions import DockerException
        from python_on_whales.utils import run

        name = f"{self.project_name}_{volume}"
        command = self.client.client_config.docker_cmd + ["volume", "inspect", "--format",
                                                          "{{.CreatedAt}}", name]
        try:
            return (run(command) or "").strip() or None
        except DockerException:
            return None

    def data(self) -> tuple[list[str], list[str]]:
        """The project's volumes and containers, whatever file made them (Compose's label)."""
        from python_on_whales.exceptions import DockerException

        label = {"label": f"com.docker.compose.project={self.project_name}"}
        try:
            volumes = [volume.name for volume in self.client.volume.list(filters=label)]
            containers = [c.name for c in self.client.container.list(all=True, filters=label)]
        except DockerException as error:
            raise EngineError(f"cannot list the volumes of {self.project_name}: "
                              f"{last_line(error.stderr) or 'no answer'}") from None
        return sorted(volumes), sorted(containers)

    def states(self, services: list[str] | None = None) -> list[ServiceState]:
        # One `compose ps` call: python-on-whales' Container objects inspect one by one.
        from python_on_whales.exceptions import DockerException
        from python_on_whales.utils import run

        command = self.client.compose.docker_compose_cmd + ["ps", "--all", "--format", "json"]
        try:
            states = parse_ps_json(run(command + (services or [])) or "")
        except DockerException as error:
            raise EngineError(f"docker compose ps failed: {last_line(error.stderr) or 'no output'}",
                              hint="`compose-tunnel up` renders the project's files again") from None
        for state in reversed(states):  # sorted: the first container of each service wins
            self.containers[state.service] = state.container
        return states

    def wait_until_ready(
        self, timeout: float, progress: Callable[[str], None], services: list[str] | None = None,
        label: str = "the stack",
    ) -> float:
        """Wait until every container (of `services`) runs, and is healthy where it has a healthcheck.

        `label` names what is being waited for in the failure's first line."""
        start = time.monotonic()
        last = ""
        while True:
            elapsed = time.monotonic() - start
            states = self.probed(self.states(services))
            ready = [s.service for s in states if s.ready]
            waiting = [f"{s.service} ({s.describe()})" for s in states if not s.ready]
            summary = f"ready {len(ready)}/{len(states)}"
            summary += f"; waiting: {', '.join(waiting)}" if waiting else ""
            if summary != last:  # print only changes, each with the time it happened
                progress(f"[{elapsed:5.1f}s] {summary}")
                last = summary
            if states and not waiting:
                return elapsed
            failed = [s for s in states if s.failed]
            if failed or elapsed > timeout:
                reason = "failed" if failed else f"not ready after {timeout:.0f}s"
                raise StartFailed(f"{label} {reason}\n" + self.failure_report())
            time.sleep(READY_POLL_SECONDS)

    @cached_property
    def prober(self):
        from .health import Prober

        return Prober(self.client.client_config.docker_cmd)

    def probed(self, states: list[ServiceState]) -> list[ServiceState]:
        """`states`, with the starting containers whose own health check passes now counted
        healthy (Docker would say so at its next scheduled check)."""
        starting = [s.container for s in states if s.status == "running" and s.health == "starting"]
        if not self.probes_health or not starting:
            return states
        passing = self.prober.passing(starting)
        return [replace(s, health="healthy") if s.container in passing else s for s in states]

    def failure_report(self) -> str:
        lines = []
        for state in self.states():
            if state.ready:
                continue
            lines.append(f"- {state.service}: {state.describe()}; last log lines:")
            lines.extend(f"    {line}" for line in self.log_tail(state.service))
        return "\n".join(lines) if lines else "(no container is failing)"

    def log_report(self, services: list[str]) -> str:
        """State and last log lines of these services, whatever their state."""
        states = {s.service: s for s in self.states(services)}
        lines = []
        for service in services:
            state = states.get(service)
            lines.append(f"- {service}: {state.describe() if state else 'no container'}; last log lines:")
            lines.extend(f"    {line}" for line in self.log_tail(service))
        return "\n".join(lines)

    def log_tail(self, service: str, lines: int = LOG_TAIL_LINES) -> list[str]:
        from python_on_whales.exceptions import DockerException

        try:
            text = self.client.compose.logs([service], tail=str(lines), no_log_prefix=True)
        except DockerException:
            return ["(no logs)"]
        return text.splitlines()[-lines:] or ["(no output)"]

    def exec(self, service: str, args: list[str],
             on_output: Callable[[str], None] | None = None) -> CommandResult:
        """Run a command in the service's container; with `on_output`, stream its output lines."""
        if on_output is not None:
            return self._exec_streaming(service, args, on_output)
        from python_on_whales.exceptions import DockerException

        container = self.containers.get(service)
        try:  # `docker exec` in the container `ps` saw: half the time of `docker compose exec`
            if container:
                out = self.client.container.execute(container, args)
            else:
                out = self.client.compose.execute(service, args, tty=False)
        except DockerException as error:
            return CommandResult(error.return_code, error.stdout or "", error.stderr or "")
        return CommandResult(0, out or "", "")

    def _exec_streaming(self, service: str, args: list[str], on_output: Callable[[str], None]) -> CommandResult:
        return stream_command(self.client.compose.docker_compose_cmd + ["exec", "-T", service, *args], on_output)

    def logs(self, services: list[str], follow: bool, tail: str | None = None, since: str | None = None,
             until: str | None = None, timestamps: bool = False) -> Iterator[str]:
        from python_on_whales.exceptions import DockerException

        try:
            for _source, chunk in self.client.compose.logs(services, follow=follow, stream=True, tail=tail,
                                                           since=since, until=until, timestamps=timestamps):
                yield chunk.decode(errors="replace")
        except DockerException as error:
            raise EngineError(f"docker compose logs failed: {last_line(error.stderr) or 'no output'}",
                              hint="`compose-tunnel status` shows what runs") from None

    def passthrough(self, args: list[str]) -> int:
        """Run `docker compose ARGS` on this project, on the user's terminal; its exit code."""
        command = [str(part) for part in self.client.compose.docker_compose_cmd] + args
        try:
            return subprocess.run(command).returncode
        except KeyboardInterrupt:
            return 130


def stream_command(command: list, on_output: Callable[[str], None],
                   every: float = STREAM_EVERY_SECONDS) -> CommandResult:
    """Run a command; its output lines (split at CR too: progress bars redraw with it) go to
    `on_output`, one per `every` seconds at most, and the last one always; all of it is kept
    for errors."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    kept: list[str] = []
    pending, shown_at, last_shown = "", 0.0, ""
    for chunk in iter(lambda: process.stdout.read1(4096), b""):  # type: ignore[union-attr]
        pending += chunk.decode(errors="replace")
        *lines, pending = re.split(r"[\r\n]", pending)
        for line in (line.strip() for line in lines):
            if not line:
                continue
            kept = (kept + [line])[-LOG_TAIL_LINES:]
            if time.monotonic() - shown_at >= every:
                on_output(line)
                shown_at, last_shown = time.monotonic(), line
    if pending.strip():
        kept.append(pending.strip())
    code = process.wait()
    if kept and kept[-1] != last_shown:
        on_output(kept[-1])
    text = "\n".join(kept)
    return CommandResult(code, text if code == 0 else "", text if code else "")
