"""Bootstraps: one-time set-up inside running services, done before the services that need it.

Garage needs a layout, a bucket and a key; Hatchet needs its database and a client token.
Each is a `Step` of one shape: the services it needs running, and a function that looks at
them, does only what is missing, and stores what it produced in the secrets. `up` starts each
step's services, runs the steps in order, renders the results into the env files, and only then
starts the whole stack, so every consumer starts once, with the results in its environment.
The steps' modules (garage, hatchet, ollama) import this shape, which imports none of them:
the list of the steps a plan needs is assembled above both, in workflows.steps.

Steps talk to containers through an `Exec` callable (the product plugs `docker compose exec`
into it, the unit tests a recorder), so this module and the steps import nothing heavy.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .errors import EngineError

if TYPE_CHECKING:
    from .state import Secrets


@dataclass(frozen=True)
class CommandResult:
    """What one command run in a container gave back."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


Runner = Callable[[list[str]], CommandResult]  # argv -> result, in one known container
# (service, argv) -> result; with on_output=callable, the output's lines as they come as well.
Exec = Callable[..., CommandResult]


class BootstrapError(EngineError):
    """A step could not finish. The message is one line naming what failed, never a secret."""


@dataclass(frozen=True)
class Step:
    """One bootstrap: start `services`, wait until they are ready, then `run`."""

    name: str
    services: tuple[str, ...]
    run: Callable[[Exec, "Secrets"], list[str]]  # what it did; empty when nothing was missing
    describe: str  # for --dry-run: what it would do
    owns: tuple[str, ...] = ()  # the secrets it produces: they live in the volumes it set up
    # Whether the stack waits for it. A step nothing consumes at start (the LLM's model, which
    # takes minutes) runs once the stack is up, so the app is usable meanwhile.
    before_stack: bool = True
    # Whether its services may only start after the steps before it ran (Hatchet needs its
    # database). The others' services all start at once, at the beginning.
    after_previous: bool = False


def started_first(steps: list[Step]) -> list[str]:
    """The services `up` starts at once, before any step runs: those of the steps that wait
    for the stack and need nothing from an earlier step."""
    return list(dict.fromkeys(service for step in steps if step.before_stack and not step.after_previous
                              for service in step.services))


def started_with_steps(steps: list[Step], compose: Mapping[str, Any], project_dir: str,
                       fed_files: set[str], fed_variables: set[str]) -> list[str]:
    """The services `up` starts together with the first steps' own: those that consume no
    bootstrap result and need nothing a later step sets up. They are up (and healthy) by the
    time the rest of the stack starts, instead of starting only then.

    `compose` is the flattened compose file's model, its relative paths `project_dir`'s;
    `fed_files` are the files (relative to it) whose content depends on a bootstrap result,
    `fed_variables` the `.env` variables that do. In doubt a service waits for the stack: it
    names a fed file (or a directory holding one) or variable, it is a step's own, behind a
    Compose profile or scaled to zero, a one-shot job others wait to complete, or Compose
    would start with it (depends_on, links, volumes_from, network_mode) a service that is
    neither free nor started first.

    Nor does a service that waits for another's health (depends_on: service_healthy): Compose
    would start it once Docker's own scheduled check passes, up to an interval late (10 s for
    Postgres and Redis), holding up the rest of the stack, which starts after what started
    alongside. It starts with the rest, once `up` has seen what it waits for pass its check."""
    services = compose.get("services") or {}
    fed = {posixpath.normpath(posixpath.join(project_dir, name)) for name in fed_files}
    first = set(started_first(steps))
    in_steps = {service for step in steps for service in step.services}
    free = {name for name, service in services.items()
            if name not in in_steps and isinstance(service, Mapping) and not skipped_by_plain_up(service)
            and not fed_variables & set(_VARIABLE.findall(repr(service)))
            and not any(_holds_fed(path, project_dir, fed) for path in _paths_read(service, compose))
            and not waits_for_health(service)}
    for service in services.values():  # a one-shot job others wait for runs with them
        free -= {name for name, condition in _conditions(service).items()
                 if condition == "service_completed_successfully"}
    changed = True
    while changed:  # drop, until none is left, those needing a service that is neither
        changed = False
        for name in sorted(free):
            if not dependencies_of(services[name]) <= free | first:
                free.discard(name)
                changed = True
    return [name for name in services if name in free]


def skipped_by_plain_up(service: Mapping[str, Any]) -> bool:
    """A service behind a Compose profile, or scaled to zero: named on a command line, it
    would start although `docker compose up` leaves it alone."""
    return bool(service.get("profiles")) or service.get("scale") == 0 or (
        (service.get("deploy") or {}).get("replicas") == 0)


_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def _paths_read(service: Mapping[str, Any], compose: Mapping[str, Any]) -> list[str]:
    """The host paths a service reads, as written: env files, bind mounts, config/secret files."""
    paths = [entry.get("path") if isinstance(entry, Mapping) else entry
             for entry in _as_list(service.get("env_file"))]
    for volume in service.get("volumes") or ():
        if isinstance(volume, Mapping):
            paths.append(volume.get("source") if volume.get("type") == "bind" else None)
        elif isinstance(volume, str) and volume.startswith((".", "/", "~", "$")):
            paths.append(volume.split(":", 1)[0])
    build = service.get("build")
    paths.append(build.get("context", ".") if isinstance(build, Mapping) else build)
    for kind in ("configs", "secrets"):  # read by name from the top-level definitions
        for entry in service.get(kind) or ():
            source = entry.get("source") if isinstance(entry, Mapping) else entry
            definition = (compose.get(kind) or {}).get(source)
            if isinstance(definition, Mapping):
                paths.append(definition.get("file"))
    return [path for path in paths if isinstance(path, str)]


def _holds_fed(path: str, project_dir: str, fed: set[str]) -> bool:
    """Whether a path is a fed file or a directory holding one (`~` or a variable: in doubt)."""
    if path.startswith(("~", "$")):
        return True
    path = posixpath.normpath(posixpath.join(project_dir, path))
    return any(name == path or name.startswith(path.rstrip("/") + "/") for name in fed)


def dependencies_of(service: Mapping[str, Any]) -> set[str]:
    """The services Compose starts along with this one."""
    names = set(service.get("depends_on") or ())
    names |= {link.split(":", 1)[0] for link in service.get("links") or () if isinstance(link, str)}
    names |= {source.split(":", 1)[0] for source in service.get("volumes_from") or ()
              if isinstance(source, str) and not source.startswith("container:")}
    network = service.get("network_mode")
    if isinstance(network, str) and network.startswith("service:"):
        names.add(network.removeprefix("service:"))
    return names


def waits_for_health(service: Mapping[str, Any]) -> bool:
    """Whether Compose starts it only once another service is healthy."""
    return "service_healthy" in _conditions(service).values()


def _conditions(service: Any) -> dict[str, Any]:
    """depends_on's long form: each dependency's condition (the short form has none)."""
    depends = service.get("depends_on") if isinstance(service, Mapping) else None
    if not isinstance(depends, Mapping):
        return {}
    return {name: rule.get("condition") for name, rule in depends.items() if isinstance(rule, Mapping)}


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
