"""The project deployed as a Docker Swarm stack: the `Stack` interface over `docker stack`.

`up`, `down`, `status`, `logs` and the bootstraps use the same calls as on one machine. Each
deploy reads Compose's model of the workdir's files (`docker compose config`), translates it
(`swarm.translate`) and deploys it: a group of services (the bootstraps' own, what starts
alongside them) without --prune, which leaves the others as they are; the whole stack with
--prune. Swarm keeps no `depends_on`: the order is compose-tunnel's, as with Compose.
A task's state on a swarm says its health: a task with a healthcheck stays `starting` until
healthy. Bootstraps run in the task's container on this node (the data node; see
`label_nodes`).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from .bootstrap import CommandResult
from .errors import EngineError, UserError, last_line
from .stack import LOG_TAIL_LINES, ServiceState, Stack, StartFailed, stream_command
from .swarm import LABEL_PREFIX, NODE_ROLES, STACK_FILE, StackFile, select, translate

FAILED_TASKS = 3  # this many failed tasks of a service, and it is crash-looping
LABELLED_BY_DEFAULT = ("edge", "data")  # the node compose-tunnel runs on, unless another has them
REMOVE_SECONDS = 60.0
STACK_NAMESPACE = "com.docker.stack.namespace"
SERVICE_LABEL = "com.docker.swarm.service.name"


class SwarmStack(Stack):
    deploys_whole = True  # a group start deploys part of the file; the last start, all of it
    probes_health = False  # a task's container may be on another node

    def __init__(self, project_dir: Path, project_name: str, compose_file: Path, env_file: Path):
        super().__init__(project_dir, project_name, compose_file, env_file)
        self.stack_file = self.project_dir / STACK_FILE
        self._translation: tuple[tuple, StackFile] | None = None  # the last one, and what it read

    # --- the engine ----------------------------------------------------------------------

    def _docker(self, *args: str) -> str:
        from python_on_whales.utils import run

        return run([*self.client.client_config.docker_cmd, *args]) or ""

    def swarm_info(self) -> dict[str, Any]:
        from python_on_whales.exceptions import DockerException

        try:
            return json.loads(self._docker("info", "--format", "{{json .Swarm}}"))
        except (DockerException, ValueError) as error:
            raise EngineError(f"docker info failed: {last_line(getattr(error, 'stderr', None)) or error}") from None

    def check(self, needs: tuple[int, int, int] = (2, 0, 0)) -> tuple[int, int, int]:
        """As for Compose (it reads the files), and this engine a manager of an active swarm."""
        version = super().check(needs)
        info = self.swarm_info()
        if info.get("LocalNodeState") != "active":
            raise UserError("this Docker Engine is not part of a swarm (--swarm deploys on one)",
                            hint="`docker swarm init --advertise-addr IP` makes this machine one, "
                                 "or run without --swarm (`up --no-swarm`)")
        if not info.get("ControlAvailable"):
            raise UserError("this Docker Engine is a swarm worker: stacks are deployed from a manager",
                            hint="run compose-tunnel on a manager node (`docker node ls` there lists them)")
        return version

    # --- the stack file ------------------------------------------------------------------

    def translated(self, files: Mapping[str, Any] | None = None) -> StackFile:
        """The stack file of the workdir's files, or of `files` (relative path -> FileContent;
        for --dry-run, before anything is written: translated from a scratch copy)."""
        if files is None:  # one `docker compose config` per content of the files, not per deploy
            generated = _generated(self.project_dir)
            read = tuple(path.read_text(encoding="utf-8") if path.is_file() else None
                         for path in (self.compose_file, self.env_file))
            key = (read, tuple(sorted(generated.items())))
            if self._translation is None or self._translation[0] != key:
                self._translation = (key, translate(self.project(), self.project_name,
                                                    str(self.project_dir), generated))
            return self._translation[1]
        with tempfile.TemporaryDirectory(prefix="compose-tunnel-") as scratch:
            root = Path(scratch)
            for name, content in files.items():
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_text(content.text, encoding="utf-8")
                os.chmod(root / name, content.mode)
            return translate(self.project(root), self.project_name, str(root), _generated(root))

    def up_command_line(self, *, build: bool = False, pull: str | None = None,
                        services: list[str] | None = None, dependencies: bool = True) -> str:
        import shlex

        words = ["docker", "stack", "deploy", "--compose-file", str(self.stack_file), "--resolve-image",
                 "never", *([] if services else ["--prune"]), self.project_name]
        line = shlex.join(words)
        return f"{line}  (only {' '.join(services)})" if services else line

    def up(self, *, build: bool = False, pull: str | None = None, services: list[str] | None = None,
           dependencies: bool = True) -> None:
        """Deploy the stack, or only `services` (Swarm has no dependencies to start with them).
        `build` builds the images here first, with Compose."""
        from python_on_whales.exceptions import DockerException

        from .yamldump import dump_compose_yaml

        if build:
            self._build(services)
        stack = self.translated()
        model = stack.model if services is None else select(stack.model, services)
        # The whole file stays in the workdir; a group is deployed from a file of its own (two
        # groups may deploy at once), removed after. Both hold the env files' values: made 0600.
        handle, name = tempfile.mkstemp(dir=self.project_dir, prefix=".stack-", suffix=".yml")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(dump_compose_yaml(model))
        if services is None:
            os.replace(name, self.stack_file)
        target = self.stack_file if services is None else Path(name)
        try:
            self._docker("stack", "deploy", "--compose-file", str(target), "--resolve-image", "never",
                         *([] if services else ["--prune"]), self.project_name)
        except DockerException as error:
            raise StartFailed(f"docker stack deploy failed: {last_line(error.stderr) or 'no output'}",
                              hint="`compose-tunnel up --dry-run` shows the translation; fix the "
                                   "profile, or run without --swarm") from None
        finally:
            if target != self.stack_file:
                target.unlink(missing_ok=True)
        if services is None:
            self._remove_unused(stack.model)

    def _build(self, services: list[str] | None) -> None:
        from python_on_whales.exceptions import DockerException

        try:
            self.client.compose.build(services or None)
        except DockerException as error:
            raise StartFailed(f"docker compose build failed: {last_line(error.stderr) or 'see its output above'}")

    def check_deployable(self, files: Mapping[str, Any], say: Callable[[str], None]) -> None:
        """Before anything is written: what Swarm cannot run is refused (the translation of
        `files`), an image built here on a swarm of several nodes too, and every node role the
        stack pins services to has a node (`label_nodes`)."""
        stack = self.translated(files)
        self._check_images(stack.built)
        self.label_nodes(set(stack.nodes.values()), say)

    def _check_images(self, built: list[str]) -> None:
        """Images built here exist on this node only: a swarm of several nodes needs a registry."""
        if not built:
            return
        info = self.swarm_info()
        if int(info.get("Nodes") or 1) > 1:
            raise UserError(f"{', '.join(built)}: images built on this machine exist on this node only, "
                            f"and this swarm has {info['Nodes']} nodes",
                            hint="push the image to a registry the nodes can pull from and name it "
                                 "(e.g. --gpu-image REGISTRY/IMAGE:TAG), or pin the service here")

    def _remove_unused(self, model: Mapping[str, Any]) -> None:
        """Configs and secrets of earlier deploys (named by their content) no service uses now."""
        from python_on_whales.exceptions import DockerException

        for kind in ("config", "secret"):
            current = {entry["name"] for entry in (model.get(kind + "s") or {}).values()}
            try:
                names = self._docker(kind, "ls", "--filter", f"label={STACK_NAMESPACE}={self.project_name}",
                                     "--format", "{{.Name}}").split()
                stale = [name for name in names if name not in current]
                if stale:
                    self._docker(kind, "rm", *stale)
            except DockerException:
                pass  # still in use by a task shutting down: removed by a later up, or by down

    # --- nodes ---------------------------------------------------------------------------

    def nodes(self) -> list[dict[str, Any]]:
        ids = self._docker("node", "ls", "--quiet").split()
        return json.loads(self._docker("node", "inspect", *ids)) if ids else []

    def label_nodes(self, roles: set[str], say: Callable[[str], None]) -> None:
        """Every role the stack pins services to has a node: edge and data default to this
        node (the one the tunnels reach, as compose-tunnel runs here); GPUs are the user's."""
        nodes = self.nodes()
        this = self.swarm_info().get("NodeID")
        labelled = {role for node in nodes for role in NODE_ROLES
                    if (node.get("Spec", {}).get("Labels") or {}).get(LABEL_PREFIX + role) == "true"}
        missing = [role for role in sorted(roles) if role not in labelled]
        if "gpu" in missing:
            raise UserError(f"no node of the swarm is labelled {LABEL_PREFIX}gpu=true, and GPU services "
                            "are pinned to one",
                            hint=f"`docker node update --label-add {LABEL_PREFIX}gpu=true NODE` on a node "
                                 "that advertises its GPUs (README: More than one machine)")
        add = [role for role in missing if role in LABELLED_BY_DEFAULT]
        if add:
            args = [arg for role in add for arg in ("--label-add", f"{LABEL_PREFIX}{role}=true")]
            self._docker("node", "update", *args, this)
            host = next((n["Description"]["Hostname"] for n in nodes if n["ID"] == this), this)
            say(f"labelled this node ({host}) " + ", ".join(f"{LABEL_PREFIX}{role}" for role in add))

    # --- state ---------------------------------------------------------------------------

    def states(self, services: list[str] | None = None) -> list[ServiceState]:
        """The current task of each service's slot, from `docker stack ps`."""
        from python_on_whales.exceptions import DockerException

        try:
            text = self._docker("stack", "ps", self.project_name, "--no-trunc", "--format", "{{json .}}")
        except DockerException as error:
            if "nothing found in stack" in (error.stderr or ""):
                return []
            raise EngineError(f"docker stack ps failed: {last_line(error.stderr) or 'no output'}") from None
        return parse_tasks(text, self.project_name, services)

    def _container(self, service: str) -> str | None:
        ids = self._docker("ps", "--quiet", "--filter", f"label={SERVICE_LABEL}={self.project_name}_{service}",
                           "--filter", "status=running").split()
        return ids[0] if ids else None

    def exec(self, service: str, args: list[str],
             on_output: Callable[[str], None] | None = None) -> CommandResult:
        """Run a command in the service's task on this node (bootstraps run on the data node)."""
        from python_on_whales.exceptions import DockerException

        container = self._container(service)
        if container is None:
            return CommandResult(1, "", f"no task of {service} runs on this node: run compose-tunnel on "
                                        f"the node labelled {LABEL_PREFIX}data")
        if on_output is not None:
            return stream_command([*self.client.client_config.docker_cmd, "exec", container, *args], on_output)
        try:
            return CommandResult(0, self.client.container.execute(container, args) or "", "")
        except DockerException as error:
            return CommandResult(error.return_code, error.stdout or "", error.stderr or "")

    def log_tail(self, service: str, lines: int = LOG_TAIL_LINES) -> list[str]:
        from python_on_whales.exceptions import DockerException

        try:
            text = self._docker("service", "logs", "--no-task-ids", "--tail", str(lines),
                                f"{self.project_name}_{service}")
        except DockerException:
            return ["(no logs)"]
        return [line.split(" | ", 1)[-1] for line in text.splitlines()][-lines:] or ["(no output)"]

    def logs(self, services: list[str], follow: bool, tail: str | None = None, since: str | None = None,
             until: str | None = None, timestamps: bool = False) -> Iterator[str]:
        """`docker service logs` of each service (all of them by default), merged as they come."""
        names = services or sorted({state.service for state in self.states()})
        flags = [*(["--follow"] if follow else []), *(["--tail", tail] if tail else []),
                 *(["--since", since] if since else []), *(["--timestamps"] if timestamps else [])]
        if until:
            raise UserError("--until is not available on a swarm (docker service logs has no such option)",
                            hint="use --since, or --tail N")
        lines: queue.Queue = queue.Queue()

        def read(name: str) -> None:
            command = [*self.client.client_config.docker_cmd, "service", "logs", *flags,
                       f"{self.project_name}_{name}"]
            with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
                for line in process.stdout:  # type: ignore[union-attr]
                    lines.put(line.decode(errors="replace"))
            lines.put(None)

        for name in names:
            threading.Thread(target=read, args=(name,), daemon=True).start()
        for _ in names:
            while (line := lines.get()) is not None:
                yield line

    def passthrough(self, args: list[str]) -> int:
        raise UserError(f"`{args[0]}` runs docker compose, and project {self.project_name!r} runs on a swarm",
                        hint=f"use `docker stack ps {self.project_name}` or `docker service` commands")

    def down(self, *, volumes: bool = False) -> None:
        """Remove the stack, wait until its containers are gone here, then its volumes (this node's)."""
        import time

        from python_on_whales.exceptions import DockerException

        label = f"label={STACK_NAMESPACE}={self.project_name}"
        try:
            self._docker("stack", "rm", self.project_name)
            deadline = time.monotonic() + REMOVE_SECONDS
            while (self._docker("ps", "--all", "--quiet", "--filter", label).split()
                   or self._docker("network", "ls", "--quiet", "--filter", label).split()):
                if time.monotonic() > deadline:
                    raise UserError(f"the stack {self.project_name} is still being removed after "
                                    f"{REMOVE_SECONDS:.0f}s", hint=f"`docker stack ps {self.project_name}`")
                time.sleep(0.25)
            if volumes:
                names = self._docker("volume", "ls", "--quiet", "--filter", label).split()
                if names:
                    self._docker("volume", "rm", *names)
        except DockerException as error:
            raise UserError(f"docker stack rm failed: {last_line(error.stderr) or 'no output'}") from None


def parse_tasks(text: str, stack: str, services: list[str] | None = None) -> list[ServiceState]:
    """`docker stack ps --format '{{json .}}'` rows -> the state of each slot's current task.

    Rows come newest first per slot; a task whose desired state is Running is the current one.
    A service with FAILED_TASKS failed tasks is crash-looping: reported as restarting, with the
    last error. A task Swarm cannot place says why (`no suitable node ...`)."""
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    current: dict[str, dict] = {}
    failures: dict[str, list[str]] = {}
    for row in rows:
        name = row["Name"].lstrip(" \\_")  # older rows of a slot are printed as " \\_ name"
        service = name.removeprefix(stack + "_").rsplit(".", 1)[0]
        if services is not None and service not in services:
            continue
        state = row["CurrentState"].split(" ", 1)[0].lower()
        if row["DesiredState"].lower() in ("running", "ready", "accepted") and name not in current:
            current[name] = {**row, "service": service, "state": state}
        elif state in ("failed", "rejected"):
            failures.setdefault(service, []).append(row.get("Error") or state)
    states = []
    for name, row in current.items():
        service, state, error = row["service"], row["state"], row.get("Error") or None
        failed = failures.get(service, [])
        if state == "running":
            states.append(ServiceState(service, name, "running", None))
        elif len(failed) >= FAILED_TASKS:
            states.append(ServiceState(service, name, "restarting", None, detail=failed[0]))
        elif state == "starting":
            states.append(ServiceState(service, name, "running", "starting"))
        elif state == "pending" and error and "no suitable node" in error:
            states.append(ServiceState(service, name, "rejected", None, detail=error))
        else:
            states.append(ServiceState(service, name, state, None, detail=error))
    return sorted(states, key=lambda s: (s.service, s.container))


NOT_MOUNTED = (STACK_FILE, "config.toml", "secrets.toml", "applied.toml")  # compose-tunnel's own


def _generated(root: Path) -> dict[str, tuple[str, bool]]:
    """The workdir's files a service may mount: relative path -> (text, readable by owner only)."""
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if not path.is_file() or relative.startswith(("applied/", ".")) or relative in NOT_MOUNTED:
            continue
        try:
            files[relative] = (path.read_text(encoding="utf-8"), path.stat().st_mode & 0o077 == 0)
        except (OSError, UnicodeDecodeError):
            continue
    return files
