"""`up`: generate, bootstrap (Garage, Hatchet), start the stack, wait until it is ready; and
what it would do (--dry-run)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .. import state
from ..change import Change
from ..choices import DEFAULT_WAIT_SECONDS
from ..renderers import COMPOSE, DOTENV
from ..stack import compose_version_needed
from ..restoring import refuse_if_restoring
from ..workspace import Workspace
from .prepare import Prepared, prepare, render, write
from .stacks import APPLIED_COMPOSE, APPLIED_DOTENV, stack_for
from .startorder import StartOrder, start_order
from .steps import steps_for

if TYPE_CHECKING:
    from ..stack import Stack

Say = Callable[[str], None]


@dataclass
class UpResult:
    prepared: Prepared
    changed: list[str]
    timeline: list[tuple[str, float]]  # (phase, seconds): each bootstrap, then the stack
    actions: list[str]  # what the bootstraps did, "step: action"
    seconds_to_ready: float = 0.0  # wall time, from the engine check until the stack is ready


def up(
    workspace: Workspace,
    options: "Change | Mapping[str, Any] | None",
    secret_options: Mapping[str, str] | None = None,
    *,
    adopt: Path | None = None,
    say: Say,
    build: bool = False,
    pull: str | None = None,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
) -> UpResult:
    """Generate, bootstrap (Garage, Hatchet), start the stack, wait until it is ready, save settings."""
    return up_prepared(workspace, prepare(workspace, options, secret_options, adopt), say=say,
                       build=build, pull=pull, wait_seconds=wait_seconds)


def up_prepared(
    workspace: Workspace,
    prepared: Prepared,
    *,
    say: Say,
    build: bool = False,
    pull: str | None = None,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    announce: Callable[[], None] = lambda: None,
) -> UpResult:
    """`up` from settings already prepared (validated, resolved and rendered). `announce` says
    what is about to apply, once the engine is known to answer and before anything changes."""

    refuse_if_restoring(workspace)
    settings = prepared.settings
    stack = stack_for(workspace, settings.project_name, target=settings.target)
    stack.check(compose_version_needed(prepared.files[COMPOSE].text))
    began = time.monotonic()
    previous = state.load_applied(workspace)
    check_postgres_volume(stack, prepared, previous)
    if settings.target == "swarm":
        stack.check_deployable(prepared.files, say)
    announce()
    # Saved with the files it rendered, before anything starts: after a failed start (an image
    # that cannot be pulled), a plain `up` retries what the user asked for, not an older stack.
    applied_before = (workspace.read(APPLIED_COMPOSE), workspace.read(APPLIED_DOTENV))
    changed = write(workspace, prepared, save_settings=True)
    if previous and (previous.project_name, previous.target) != (settings.project_name, settings.target):
        where = " (on the swarm)" if previous.target == "swarm" else ""
        say(f"stopping the previous project {previous.project_name!r}{where}")
        stack_for(workspace, previous.project_name, applied=True, target=previous.target).down()
        previous = None  # nothing of it runs as applied now
    # Recorded before starting, so `down` can clean up even after a failed start.
    workspace.write({
        APPLIED_COMPOSE: prepared.files[COMPOSE],
        APPLIED_DOTENV: prepared.files[DOTENV],
        state.APPLIED: state.Applied(settings.project_name, tuple(prepared.plan.names),
                                     settings.target).file(),
    })
    steps = steps_for(prepared.plan, lambda line: say(f"  {line}"))
    timeline: list[tuple[str, float]] = []
    actions: list[str] = []
    before = [s for s in steps if s.before_stack]
    ready = running_as_applied(stack, previous, settings.project_name, changed, applied_before,
                               (prepared.files[COMPOSE].text, prepared.files[DOTENV].text),
                               build or pull == "always")
    order = start_order(workspace, prepared, steps)
    first, alongside = ([s for s in group if s not in ready] for group in (order.first, order.alongside))
    if first:
        started = time.monotonic()
        say(f"starting {', '.join(first)}")
        stack.up(build=build, pull=pull, services=first)
        timeline.append(("start", time.monotonic() - started))
    joined: Callable[..., None] = lambda report=True: None  # noqa: E731
    if alongside:
        say(f"starting {', '.join(alongside)} alongside the bootstraps")
        joined = stack.up_alongside(build=build, pull=pull, services=alongside)
    started_now = set(first) | set(alongside)
    try:
        run_bootstraps(stack, before, prepared, say, timeline, actions, order, build=build, pull=pull,
                       wait_seconds=wait_seconds, started=started_now | ready, ready=ready)
    except BaseException:
        joined(report=False)  # no Compose run left behind; the bootstrap's failure is the one told
        raise
    joined()
    prepared.files = render(workspace, prepared.plan, prepared.secrets, prepared.files[COMPOSE])
    written = write(workspace, prepared, save_settings=False)
    if written:
        say("bootstrap results written: " + ", ".join(sorted(written)))
    elif not actions:
        say("bootstrap: everything already in place")
    say(f"starting {settings.project_name}: {', '.join(prepared.plan.names)}")
    started = time.monotonic()
    start_stack(stack, order, started_now, ready, say, build=build, pull=pull, wait_seconds=wait_seconds)
    stack.wait_until_ready(wait_seconds, say)
    timeline.append(("stack", time.monotonic() - started))
    after = [s for s in steps if not s.before_stack]
    whole_stack = {service for step in after for service in step.services}  # up and ready just now
    run_bootstraps(stack, after, prepared, say, timeline, actions, order, build=build, pull=pull,
                   wait_seconds=wait_seconds, started=whole_stack, ready=whole_stack)
    return UpResult(prepared, changed, timeline, actions, time.monotonic() - began)


def start_stack(stack: "Stack", order: StartOrder, started: set[str], ready: set[str], say: Say, *,
                build: bool, pull: str | None, wait_seconds: float) -> None:
    """Start what is not started yet. The bootstraps made their services ready; with what
    started alongside them ready too, the rest start without Compose checking again the
    conditions of what they depend on (--no-deps). Nothing left: nothing to run (a replay of
    a stack running as applied)."""
    rest = [service for service in order.services if service not in started | ready]
    if not order.selective:
        stack.up(build=build, pull=pull)
    elif stack.deploys_whole:  # a swarm: the whole file, unless all of it runs as applied
        if rest:
            stack.up(build=build, pull=pull)
    else:
        waiting = [service for service in started if service not in ready]
        if waiting:
            stack.wait_until_ready(wait_seconds, say, services=sorted(waiting),
                                   label=f"started alongside the bootstraps: {', '.join(sorted(waiting))}")
        if rest:
            stack.up(build=build, pull=pull, services=rest,
                     dependencies=not order.started_with(rest, started | ready))


def check_postgres_volume(stack: "Stack", prepared: Prepared, previous: "state.Applied | None") -> None:
    """Refuse, before anything is written or started, to start the project's Postgres on a
    volume initialised with credentials compose-tunnel does not have (an upstream install).

    The volume is this workdir's when this workdir started this project before, with the
    password it still holds (Docker keeps no trustworthy identity of a volume: its CreatedAt
    moves as containers mount it)."""
    from ..adopt import POSTGRES_VOLUME, foreign_volume_error

    if prepared.adopted is not None:
        return
    if previous is not None and previous.project_name == stack.project_name and not prepared.new_password:
        return
    created = stack.volume_created(POSTGRES_VOLUME)
    if created is not None:
        raise foreign_volume_error(stack.project_name, f"{stack.project_name}_{POSTGRES_VOLUME}", created)


def running_as_applied(stack: "Stack", previous: "state.Applied | None", project_name: str,
                       changed: list[str], applied: tuple, rendered: tuple, build: bool) -> set[str]:
    """The services already running and ready exactly as this run would start them: nothing
    was rendered differently from what the last `up` applied (no file changed, the same
    compose.yml and .env, the same project, no --build). `up` neither starts nor waits for them
    again: on a replay, the bootstraps only check their stored results."""
    if build or changed or previous is None or previous.project_name != project_name or applied != rendered:
        return set()
    return {state.service for state in stack.states() if state.ready}


def run_bootstraps(stack: "Stack", steps: list, prepared: Prepared, say: Say,
                   timeline: list[tuple[str, float]], actions: list[str], order: StartOrder, *,
                   build: bool, pull: str | None, wait_seconds: float, started: set[str],
                   ready: set[str] = frozenset()) -> None:
    """Each step in order: start its services (unless `started` already), wait for them (unless
    `ready` already), run it; what it stores goes into the secrets, which the caller renders
    before any consumer starts. (Run
    side by side, Garage's step and Hatchet's gained nothing measurable: Postgres's start-up is
    the critical path of both.)"""
    from ..bootstrap import BootstrapError
    from ..stack import StartFailed

    ready = set(ready)  # grows with what each step waited for
    for step in steps:
        begun = time.monotonic()
        services = list(step.services)
        if not set(services) <= started:
            say(f"{step.name}: starting {', '.join(services)}")
            stack.up(build=build, pull=pull, services=services,
                     dependencies=not order.started_with(services, ready))
        if not set(services) <= ready:
            stack.wait_until_ready(wait_seconds, lambda line, name=step.name: say(f"{name} {line}"),
                                   services=services, label=f"{step.name} bootstrap: {', '.join(services)}")
            ready |= set(services)
        try:
            done = step.run(stack.exec, prepared.secrets)
        except BootstrapError as error:
            raise StartFailed(f"{step.name} bootstrap failed: {error}\n"
                              + stack.log_report(list(step.services))) from None
        for action in done:
            say(f"{step.name}: {action}")
        actions += [f"{step.name}: {action}" for action in done]
        timeline.append((step.name, time.monotonic() - begun))


def up_steps(workspace: Workspace, prepared: Prepared, *, build: bool = False,
             pull: str | None = None) -> list[str]:
    """What `up` would do, one line per step, for --dry-run (on a swarm: first, what the
    translation to a stack file changes)."""
    stack = stack_for(workspace, prepared.settings.project_name, target=prepared.settings.target)
    steps = steps_for(prepared.plan)
    order = start_order(workspace, prepared, steps)

    def run(services: list[str] | None = None, ready: set[str] | None = None) -> str:
        """`ready`: what is known ready when they start (None: Compose checks their conditions)."""
        dependencies = ready is None or not order.started_with(services or [], ready)
        return "would run: " + stack.up_command_line(build=build, pull=pull, services=services,
                                                     dependencies=dependencies)

    lines = []
    if prepared.settings.target == "swarm":
        lines += [f"swarm: {note}" for note in stack.translated(prepared.files).notes]
    lines += [run(order.first)] if order.first else []
    if order.alongside:
        lines.append(run(order.alongside) + "  (alongside the bootstraps)")
    started, ready = set(order.first) | set(order.alongside), set()
    for step in (s for s in steps if s.before_stack):
        if not set(step.services) <= started:
            lines.append(run(list(step.services), ready))
        lines.append(f"would {step.describe}")
        started |= set(step.services)
        ready |= set(step.services)
    rest = [service for service in order.services if service not in started]
    if not order.selective or stack.deploys_whole:
        lines.append(run())
    elif rest:
        lines.append(run(rest, started))
    # Steps after the stack find their services started by it.
    lines += [f"would {step.describe}" for step in steps if not step.before_stack]
    return lines
