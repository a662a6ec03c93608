"""Workflows the commands run: plain functions over a workspace, no Click.

Data flows one way: options -> Settings (the saved ones, changed by the options) -> Plan ->
rendered files -> stack.
Settings are saved with the files rendered from them (a failed start is retried by a replay).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from . import state
from .choices import DEFAULT_WAIT_SECONDS
from .plan import Plan, make_plan
from .profiles import load_catalog
from .renderers import COMPOSE, DOTENV, render_compose, render_config
from .settings import Change, Settings, apply_change, describe_change
from .errors import UserError
from .state import Secrets
from .workspace import FileContent, Workspace

if TYPE_CHECKING:
    from .adopt import Install
    from .stack import Stack

Say = Callable[[str], None]


@dataclass
class Prepared:
    settings: Settings
    replayed: bool
    plan: Plan
    secrets: Secrets
    files: dict[str, FileContent]
    new_password: bool = False  # the database password was made now (no workdir had one)
    adopted: "Install | None" = None
    changes: list[str] = field(default_factory=list)  # how the saved settings change, in words


def choose_settings(workspace: Workspace, change: "Change | Mapping[str, Any] | None",
                    secret_options: Mapping[str, str] | None = None) -> tuple[Settings, bool, list[str]]:
    """The settings to run: the saved ones as `change` changes them (a mapping: options given),
    or replayed as they are when nothing is asked. Also: whether it is a replay, and the change
    in words. A password given turns password auth on."""
    change = as_change(change)
    if secret_options and secret_options.get("password"):
        change = replace(change, given={**change.given, "auth": "password"})
    saved = state.load_settings(workspace)
    if change.empty:
        return (saved, True, []) if saved is not None else (Settings(), False, [])
    settings = apply_change(saved, change)
    return settings, False, describe_change(saved, settings)


def as_change(change: "Change | Mapping[str, Any] | None") -> Change:
    if isinstance(change, Change):
        return change
    return Change(given=dict(change or {}))


def apply_secret_options(secrets: Secrets, secret_options: Mapping[str, str] | None,
                         settings: Settings) -> None:
    """Secrets given as options replace the stored ones; a password is stored as its hash only."""
    from .reflector import hash_password, verify_password

    for name, value in (secret_options or {}).items():
        if name == "password":
            # The same password again keeps its hash: the env files, and so the containers, stay.
            stored = secrets.get("admin_password_hash")
            if not (stored and verify_password(value, stored)):
                secrets.values["admin_password_hash"] = hash_password(value)
        else:
            secrets.values[name] = value
    if settings.auth == "password" and not secrets.get("admin_password_hash"):
        raise UserError("password auth needs a password, and none is stored",
                        hint="pass --password (asks for it), or --password-file FILE")


def prepare(workspace: Workspace, options: "Change | Mapping[str, Any] | None",
            secret_options: Mapping[str, str] | None = None, adopt: Path | None = None) -> Prepared:
    """Everything up to rendered content in memory: validation, DNS, rendering. Writes nothing.

    With `adopt`, an upstream install's credentials and keys replace the stored ones, and its
    settings (project name, auth, LLM) are the base the given options change."""
    from .reflector import needs_hf_token

    install = None
    if adopt is not None:
        from .adopt import read_install

        install = read_install(adopt)
        change = as_change(options)  # the install's settings are the base the options change
        options = replace(change, reset=True, given={"project_name": install.project_name,
                                                     **install.options, **change.given})
    settings, replayed, changes = choose_settings(workspace, options, secret_options)
    plan = make_plan(settings, load_catalog(settings.profiles_dirs))
    secrets = state.load_secrets(workspace)
    new_password = "postgres_password" not in secrets.values
    if install is not None:
        secrets.values.update(install.secrets)
    secrets.ensure()
    apply_secret_options(secrets, secret_options, settings)
    if needs_hf_token(plan) and not secrets.get("hf_token"):
        plan = replace(plan, warnings=plan.warnings + (
            "no HuggingFace token: diarization falls back to a public model (--hf-token TOKEN)",))
    return Prepared(settings, replayed, plan, secrets, render(workspace, plan, secrets),
                    new_password and install is None, install, changes)


def render(workspace: Workspace, plan: Plan, secrets: Secrets,
           compose: FileContent | None = None) -> dict[str, FileContent]:
    """Every file of the workdir; `compose`, when given, is the compose file already made from
    this plan (it depends on nothing else)."""
    files = {COMPOSE: compose or FileContent(render_compose(plan)),
             **render_config(plan, secrets, workspace.read)}
    files[state.SECRETS] = secrets.file()
    return files


@dataclass(frozen=True)
class StartOrder:
    """In which groups `up` starts the services of the flattened compose file."""

    first: list[str]  # before the first bootstrap: the first steps' own
    alongside: list[str]  # while the bootstraps run: what consumes no bootstrap result, nor waits for health
    services: list[str]  # every service of the file
    dependencies: dict[str, set[str]]  # what Compose starts (and waits for) with each
    # A service behind a Compose profile or scaled to zero: named on a command line, it would
    # start; the stack is then started whole, as Compose selects it.
    selective: bool = True

    def started_with(self, services: list[str], ready: set[str]) -> bool:
        """Whether these services may start without their dependencies (--no-deps): every one
        of them is ready, so Compose need not check their conditions again (half a second per
        level of dependencies, already-healthy ones included)."""
        return all(self.dependencies.get(name, set()) <= ready | set(services) for name in services)


def start_order(workspace: Workspace, prepared: Prepared, steps: list) -> StartOrder:
    """The services `up` starts before the first bootstrap runs (the first steps' own), and
    those it starts alongside the bootstraps: the ones consuming no bootstrap result (found by
    rendering with every result marked: the files and `.env` variables that change are the
    ones bootstraps feed) and waiting for no other service's health (see started_with_steps)."""
    from . import envfile
    from .bootstrap import dependencies_of, skipped_by_plain_up, started_first, started_with_steps
    from .yamlio import load_compose_text

    owned = {name: f"bootstrap-result-{name}" for step in steps for name in step.owns}
    marked = render_config(prepared.plan, Secrets({**prepared.secrets.values, **owned}), workspace.read)
    fed = {name for name, content in marked.items() if prepared.files.get(name) != content}
    before, after = (envfile.values(files[DOTENV].text) if DOTENV in files else {}
                     for files in (prepared.files, marked))
    variables = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    model = load_compose_text(prepared.files[COMPOSE].text, COMPOSE)
    services = model.get("services") or {}
    alongside = started_with_steps(steps, model, str(workspace.root), fed, variables)
    return StartOrder(
        started_first(steps), alongside,
        list(services), {name: dependencies_of(service) for name, service in services.items()},
        selective=not any(map(skipped_by_plain_up, services.values())))


def write(workspace: Workspace, prepared: Prepared, *, save_settings: bool) -> list[str]:
    files = dict(prepared.files)
    if save_settings:
        files[state.CONFIG] = state.settings_file(prepared.settings)
    return workspace.write(files)


def generate(workspace: Workspace, options: "Change | Mapping[str, Any] | None",
             secret_options: Mapping[str, str] | None = None,
             adopt: Path | None = None) -> tuple[Prepared, list[str]]:
    """Render every file into the workdir and remember the settings; start nothing."""
    prepared = prepare(workspace, options, secret_options, adopt)
    return prepared, write(workspace, prepared, save_settings=True)


def merge_to_text(paths: list[Path]) -> str:
    from .merge import merge_files
    from .yamlio import dump_compose_yaml

    return dump_compose_yaml(merge_files(paths))


# --- running the stack -------------------------------------------------------------------

APPLIED_COMPOSE = "applied/compose.yml"
APPLIED_DOTENV = "applied/.env"


def stack_for(workspace: Workspace, project_name: str, *, applied: bool = False,
              target: str = "compose") -> "Stack":
    """The project on docker compose, or on the swarm this engine manages (`target`)."""
    if target == "swarm":
        from .swarmstack import SwarmStack as Stack
    else:
        from .stack import Stack

    compose, dotenv = (APPLIED_COMPOSE, APPLIED_DOTENV) if applied else (COMPOSE, DOTENV)
    return Stack(workspace.root, project_name, workspace.path(compose), workspace.path(dotenv))


def compose_version_needed(compose_text: str) -> tuple[int, int, int]:
    """The oldest Compose that reads this flattened file (its tags are already resolved)."""
    needs = (2, 0, 0)
    if re.search(r"^\s+required:", compose_text, re.MULTILINE):
        needs = max(needs, (2, 24, 0))  # env_file/depends_on `required`
    if re.search(r"^include:", compose_text, re.MULTILINE):
        needs = max(needs, (2, 20, 0))
    return needs


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
    from .bootstrap import steps_for

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
    from .adopt import POSTGRES_VOLUME, foreign_volume_error

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
    from .bootstrap import BootstrapError
    from .stack import StartFailed

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
    from .bootstrap import steps_for

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


@dataclass
class DownResult:
    project_name: str
    containers: int  # how many containers there were to stop


def down(workspace: Workspace, *, volumes: bool = False) -> DownResult | None:
    """Stop what `up` last applied (whatever the configuration says now).

    With the volumes go the bootstraps' state (Garage's keys, Hatchet's tenant): their stored
    results are forgotten too, so the next `up` creates them anew instead of using stale ones.
    """
    from .bootstrap import owned_secrets

    applied = state.load_applied(workspace)
    if applied is None:
        return None
    stack = stack_for(workspace, applied.project_name, applied=True, target=applied.target)
    stack.check()
    containers = len(stack.states())
    stack.down(volumes=volumes)
    if volumes:
        secrets = state.load_secrets(workspace)
        if secrets.forget(owned_secrets()):
            workspace.write({state.SECRETS: secrets.file()})
    return DownResult(applied.project_name, containers)


def rebuild(
    workspace: Workspace, *, say: Say, pull: bool = True, wait_seconds: float = DEFAULT_WAIT_SECONDS
) -> UpResult:
    """Tear down (volumes kept), pull and rebuild images, start again from the saved settings."""
    if state.load_settings(workspace) is None:
        raise UserError(
            f"no saved configuration in {workspace.root} to rebuild",
            hint="run `compose-tunnel up` with your flags first",
        )
    stopped = down(workspace)
    if stopped and stopped.containers:
        say(f"stopped {stopped.project_name}")
    prepared = prepare(workspace, None)
    if pull:
        write(workspace, prepared, save_settings=False)
        say("pulling newer images")
        stack_for(workspace, prepared.settings.project_name).pull()  # here; a swarm's nodes pull theirs
    return up_prepared(workspace, prepared, say=say, build=True, wait_seconds=wait_seconds)


def applied_stack(workspace: Workspace) -> "Stack":
    """The stack `up` last started, with Docker checked as for every engine command."""
    applied = state.load_applied(workspace)
    if applied is None:
        raise UserError(
            f"nothing has been started from {workspace.root}",
            hint="run `compose-tunnel up` first, or pass the --workdir you used",
        )
    stack = stack_for(workspace, applied.project_name, applied=True, target=applied.target)
    stack.check()
    return stack
