"""`doctor`'s checks of the engine and of the stack as `up` applied it: Docker Engine and
Compose recent enough, free space where Docker keeps its data, the running containers made from
the applied files, each service running and healthy."""

from __future__ import annotations

import os
import re

from .checks import FAIL, OK, WARN, Install, Result, docker_failure
from .dockercli import DockerTimeout
from .errors import last_line

DISK_WARN, DISK_FAIL = 0.10, 0.02  # free fraction where Docker keeps its data, and the workdir
MIN_ENGINE = (20, 10)
LOG_LINES = 5


def check_docker(install: Install) -> Result:
    """Docker Engine and Compose answer, and are recent enough for the applied files."""
    from .stack import compose_version_needed, parse_compose_version

    name = "docker"
    docker = install.docker
    try:
        server = docker.run("version", "--format", "{{.Server.Version}}")
        compose = docker.run("compose", "version", "--short")
    except DockerTimeout as error:
        return docker_failure(name, error)
    if server.returncode == 127:
        return Result(name, FAIL, "docker is not installed", "install Docker Engine and its Compose v2 plugin")
    if server.returncode != 0 or not server.stdout.strip():
        return Result(name, FAIL, f"the Docker daemon is not reachable: {last_line(server.stderr) or 'no answer'}",
                      "start it (e.g. `sudo systemctl start docker`) and check you may use its socket")
    engine = server.stdout.strip()
    if tuple(int(p) for p in engine.split(".")[:2] if p.isdigit()) < MIN_ENGINE:
        return Result(name, FAIL, f"Docker Engine {engine} is older than {'.'.join(map(str, MIN_ENGINE))}",
                      "upgrade Docker Engine")
    if compose.returncode != 0:
        return Result(name, FAIL, "the Docker Compose v2 plugin is missing (`docker compose` does not run)",
                      "`make docker` links one into ~/.docker/cli-plugins, or install docker-compose-plugin")
    version = parse_compose_version(compose.stdout)
    needs = compose_version_needed(install.workspace.read("applied/compose.yml") or "")
    if version < needs:
        return Result(name, FAIL, f"Docker Compose {'.'.join(map(str, version))} is older than the "
                      f"{'.'.join(map(str, needs))} the applied files need", "upgrade the Docker Compose plugin")
    return Result(name, OK, f"Docker Engine {engine}, Compose {'.'.join(map(str, version))}")


def free_fraction(path: str) -> float:
    stats = os.statvfs(path)
    return stats.f_bavail / stats.f_blocks if stats.f_blocks else 1.0


def check_disk(install: Install) -> Result:
    """Free space where Docker keeps images and volumes, and in the workdir."""
    name = "disk"
    places = [("the workdir", str(install.workspace.root.absolute()))]
    try:
        root = install.docker.run("info", "--format", "{{.DockerRootDir}}").stdout.strip()
    except DockerTimeout:
        root = ""
    if root and os.path.isdir(root):  # a remote engine's disk is not this machine's
        places.insert(0, ("Docker's data", root))
    seen = [(what, path, free_fraction(path)) for what, path in places]
    low = min(seen, key=lambda entry: entry[2])
    summary = ", ".join(f"{what} ({path}) {fraction:.0%} free" for what, path, fraction in seen)
    what, path, fraction = low
    if fraction < DISK_FAIL:
        return Result(name, FAIL, f"{what} ({path}) is nearly full: {fraction:.1%} free",
                      "free space: `docker system df` shows what Docker holds, `docker image prune` "
                      "removes unused images")
    if fraction < DISK_WARN:
        return Result(name, WARN, f"{what} ({path}) has {fraction:.0%} free",
                      "free space before it fills: `docker system df`, `docker image prune`")
    return Result(name, OK, summary)


def check_configuration(install: Install) -> Result:
    """The saved configuration is what runs: the files rendered now are the ones `up` applied,
    and no container is missing or made from another configuration (Compose's own judgement:
    what a dry run of `up` would create or recreate)."""
    name = "configuration"
    fix = "run `compose-tunnel up` to apply it"
    workspace = install.workspace
    changed = [shown for rendered, applied, shown in (("compose.yml", "applied/compose.yml", "compose.yml"),
                                                      (".env", "applied/.env", ".env"))
               if workspace.read(rendered) != workspace.read(applied)]
    if changed:
        return Result(name, FAIL, f"the configuration changed since the last `up` ({', '.join(changed)} "
                      "differ from what runs)", fix)
    try:
        dry = install.docker.run("compose", "--dry-run", *install.docker.compose_args[1:], "up", "--detach",
                                 "--no-deps", "--pull", "never", timeout=8.0)
    except DockerTimeout as error:
        return docker_failure(name, error)
    if dry.returncode != 0:
        return Result(name, FAIL, f"Compose cannot apply the applied files: {last_line(dry.stderr)}", fix)
    prefix = re.escape(install.applied.project_name)
    found: dict[str, list[str]] = {"Create": [], "Recreate": []}
    for match in re.finditer(rf"Container {prefix}-(\S+?)-\d+\s+(Create|Recreate)\s*$", dry.stdout + dry.stderr,
                             re.MULTILINE):
        found[match.group(2)].append(match.group(1))
    if found["Create"]:
        return Result(name, FAIL, f"no container for {', '.join(sorted(set(found['Create'])))}", fix)
    if found["Recreate"]:
        return Result(name, FAIL, f"{', '.join(sorted(set(found['Recreate'])))}: running from another "
                      "configuration than the applied one", fix)
    return Result(name, OK, "every container runs as `up` applied it")


def check_services(install: Install) -> Result:
    """Each container runs, healthy where it has a health check; the last log lines of one that
    does not."""
    from .stack import parse_ps_json

    name = "services"
    try:
        listed = install.docker.compose("ps", "--all", "--format", "json")
    except DockerTimeout as error:
        return docker_failure(name, error)
    if listed.returncode != 0:
        return Result(name, FAIL, f"docker compose ps failed: {last_line(listed.stderr) or 'no output'}",
                      "`compose-tunnel ps` shows what Compose says")
    states = parse_ps_json(listed.stdout)
    if not states:
        return Result(name, FAIL, f"no container of {install.applied.project_name} exists",
                      "run `compose-tunnel up`")
    # Docker says `starting` until its own first check passes, which may come after `up`'s own
    # run of the same check found the service ready (health.py): a warning, not a failure.
    starting = [state for state in states if state.status == "running" and not state.exit_code
                and state.health == "starting"]
    bad = [state for state in states if not state.ready and state not in starting]
    if not bad and starting:
        return Result(name, WARN, f"{len(states)} containers running; the health check has not passed yet "
                      f"for {', '.join(state.service for state in starting)}",
                      "a starting service passes in a few seconds: run doctor again")
    if not bad:
        return Result(name, OK, f"{len(states)} containers running, healthy where checked")
    details: list[str] = []
    for state in bad[:3]:
        details.append(f"{state.service}: {state.describe()}; last log lines:")
        try:
            logs = install.docker.compose("logs", "--no-log-prefix", "--tail", str(LOG_LINES), state.service)
            lines = (logs.stdout + logs.stderr).splitlines()[-LOG_LINES:] or ["(no output)"]
        except DockerTimeout:
            lines = ["(docker compose logs did not answer)"]
        details.extend(f"  {line}" for line in lines)
    names = ", ".join(f"{state.service} ({state.describe()})" for state in bad)
    return Result(name, FAIL, f"not running or not healthy: {names}",
                  f"`compose-tunnel logs {bad[0].service}` shows more; `compose-tunnel up` starts "
                  "what stopped", tuple(details))
