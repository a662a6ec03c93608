"""Workflows the commands run: plain functions over a workspace, no Click.

Data flows one way: options -> Settings (or the saved ones) -> Plan -> rendered files -> stack.
Settings are saved only after the run they describe succeeded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from . import state
from .plan import Plan, make_plan
from .profiles import load_catalog
from .renderers import render_all
from .settings import Settings
from .errors import UserError
from .state import Secrets
from .workspace import FileContent, Workspace

if TYPE_CHECKING:
    from .stack import Stack

Say = Callable[[str], None]


@dataclass
class Prepared:
    settings: Settings
    replayed: bool
    plan: Plan
    secrets: Secrets
    files: dict[str, FileContent]


def choose_settings(workspace: Workspace, options: Mapping[str, Any] | None) -> tuple[Settings, bool]:
    """Settings from the given options, or the saved ones when no option was given."""
    if options is None:
        saved = state.load_settings(workspace)
        if saved is not None:
            return saved, True
        return Settings(), False
    return Settings.from_options(options), False


def prepare(workspace: Workspace, options: Mapping[str, Any] | None) -> Prepared:
    """Everything up to rendered content in memory: validation, DNS, rendering. Writes nothing."""
    settings, replayed = choose_settings(workspace, options)
    plan = make_plan(settings, load_catalog(settings.profiles_dirs))
    secrets = state.load_secrets(workspace).ensure()
    return Prepared(settings, replayed, plan, secrets, render(workspace, plan, secrets))


def render(workspace: Workspace, plan: Plan, secrets: Secrets) -> dict[str, FileContent]:
    files = render_all(plan, secrets, workspace.read)
    files[state.SECRETS] = secrets.file()
    return files


def write(workspace: Workspace, prepared: Prepared, *, save_settings: bool) -> list[str]:
    files = dict(prepared.files)
    if save_settings:
        files[state.CONFIG] = state.settings_file(prepared.settings)
    return workspace.write(files)


def generate(workspace: Workspace, options: Mapping[str, Any] | None) -> tuple[Prepared, list[str]]:
    """Render every file into the workdir and remember the settings; start nothing."""
    prepared = prepare(workspace, options)
    return prepared, write(workspace, prepared, save_settings=True)


def merge_to_text(paths: list[Path]) -> str:
    from .merge import merge_files
    from .yamlio import dump_compose_yaml

    return dump_compose_yaml(merge_files(paths))


# --- running the stack -------------------------------------------------------------------

APPLIED_COMPOSE = "applied/compose.yml"
APPLIED_DOTENV = "applied/.env"
DEFAULT_WAIT_SECONDS = 300.0
GARAGE_SERVICE = "garage"


def stack_for(workspace: Workspace, project_name: str, *, applied: bool = False) -> "Stack":
    from .renderers import COMPOSE, DOTENV
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
    seconds_to_ready: float
    garage_actions: list[str]


def up(
    workspace: Workspace,
    options: Mapping[str, Any] | None,
    *,
    say: Say,
    build: bool = False,
    pull: str | None = None,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
) -> UpResult:
    """Generate, start the stack, wait until it is ready, bootstrap Garage, save settings."""
    return up_prepared(workspace, prepare(workspace, options), say=say, build=build, pull=pull,
                       wait_seconds=wait_seconds)


def up_prepared(
    workspace: Workspace,
    prepared: Prepared,
    *,
    say: Say,
    build: bool = False,
    pull: str | None = None,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
) -> UpResult:
    """`up` from settings already prepared (validated, resolved and rendered)."""
    from .renderers import COMPOSE, DOTENV

    settings = prepared.settings
    stack = stack_for(workspace, settings.project_name)
    stack.check(compose_version_needed(prepared.files[COMPOSE].text))
    previous = state.load_applied(workspace)
    changed = write(workspace, prepared, save_settings=False)
    if previous and previous.project_name != settings.project_name:
        say(f"stopping the previous project {previous.project_name!r}")
        stack_for(workspace, previous.project_name, applied=True).down()
    # Recorded before starting, so `down` can clean up even after a failed start.
    workspace.write({
        APPLIED_COMPOSE: prepared.files[COMPOSE],
        APPLIED_DOTENV: prepared.files[DOTENV],
        state.APPLIED: state.Applied(settings.project_name, tuple(prepared.plan.names)).file(),
    })
    seconds = 0.0
    garage_actions: list[str] = []
    if prepared.plan.has("garage"):
        # Garage first, so the services that use its key start once, with the key.
        say("starting garage")
        stack.up(build=build, pull=pull, services=[GARAGE_SERVICE])
        seconds += stack.wait_until_ready(wait_seconds, say, services=[GARAGE_SERVICE])
        garage_actions = bootstrap_garage(workspace, prepared, stack, say)
    say(f"starting {settings.project_name}: {', '.join(prepared.plan.names)}")
    stack.up(build=build, pull=pull)
    seconds += stack.wait_until_ready(wait_seconds, say)
    workspace.write({state.CONFIG: state.settings_file(settings)})
    return UpResult(prepared, changed, seconds, garage_actions)


def up_steps(workspace: Workspace, prepared: Prepared, *, build: bool = False,
             pull: str | None = None) -> list[str]:
    """What `up` would do, one line per step, for --dry-run."""
    stack = stack_for(workspace, prepared.settings.project_name)
    steps = []
    if prepared.plan.has("garage"):
        garage_up = stack.up_command_line(build=build, pull=pull, services=[GARAGE_SERVICE])
        steps.append("would run: " + garage_up)
        steps.append("would bootstrap Garage (layout, bucket, key) and write its key into server.env")
    steps.append("would run: " + stack.up_command_line(build=build, pull=pull))
    return steps


def bootstrap_garage(workspace: Workspace, prepared: Prepared, stack: "Stack", say: Say) -> list[str]:
    """Layout, bucket and key on a running Garage; their S3 settings go into server.env."""
    from .garage import bootstrap
    from .renderers import GARAGE_BUCKET, GARAGE_KEY_NAME

    secrets = prepared.secrets
    key, actions = bootstrap(
        lambda args: stack.exec(GARAGE_SERVICE, ["/garage", *args]),
        bucket=GARAGE_BUCKET,
        key_name=GARAGE_KEY_NAME,
        known_secret=secrets.get("garage_secret_key"),
    )
    for action in actions:
        say(f"garage: {action}")
    secrets.values["garage_key_id"] = key.key_id
    secrets.values["garage_secret_key"] = key.secret
    prepared.files = render(workspace, prepared.plan, secrets)
    if write(workspace, prepared, save_settings=False):
        say("garage: storage settings written to server.env")
        return actions or ["storage settings updated"]
    return actions


def down(workspace: Workspace, *, volumes: bool = False) -> str | None:
    """Stop what `up` last applied (whatever the configuration says now)."""
    applied = state.load_applied(workspace)
    if applied is None:
        return None
    stack = stack_for(workspace, applied.project_name, applied=True)
    stack.check()
    stack.down(volumes=volumes)
    return applied.project_name


def rebuild(
    workspace: Workspace, *, say: Say, pull: bool = True, wait_seconds: float = DEFAULT_WAIT_SECONDS
) -> UpResult:
    """Tear down (volumes kept), pull and rebuild images, start again from the saved settings."""
    if state.load_settings(workspace) is None:
        raise UserError(
            f"no saved configuration in {workspace.root} to rebuild",
            hint="run `compose-tunnel up` with your flags first",
        )
    name = down(workspace)
    if name:
        say(f"stopped {name}")
    prepared = prepare(workspace, None)
    if pull:
        write(workspace, prepared, save_settings=False)
        say("pulling newer images")
        stack_for(workspace, prepared.settings.project_name).pull()
    return up_prepared(workspace, prepared, say=say, build=True, wait_seconds=wait_seconds)


def applied_stack(workspace: Workspace) -> "Stack":
    applied = state.load_applied(workspace)
    if applied is None:
        raise UserError(
            f"nothing has been started from {workspace.root}",
            hint="run `compose-tunnel up` first, or pass the --workdir you used",
        )
    return stack_for(workspace, applied.project_name, applied=True)
