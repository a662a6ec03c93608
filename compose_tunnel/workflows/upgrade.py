"""`upgrade` (and `rebuild`, which also builds): newer images for the stack that runs, and
only the containers whose image or configuration changed replaced, each as its profile says
(replacements.py): the app and the workers with no gap (rollout.py), the data with a short one.

The saved configuration is replayed, as a plain `up` replays it; one that would run another
project or other profiles than those running is refused: `up` applies such a change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from .. import state
from ..choices import DEFAULT_WAIT_SECONDS
from ..errors import UserError
from ..renderers import COMPOSE, DOTENV
from ..restoring import refuse_if_restoring
from ..stack import compose_version_needed
from ..workspace import Workspace
from .prepare import Prepared, prepare, write
from .stacks import APPLIED_COMPOSE, APPLIED_DOTENV, last_applied, stack_for

if TYPE_CHECKING:
    from ..replacements import Plan
    from ..rollout import Pulled
    from ..stack import Stack
    from .up import UpResult

Say = Callable[[str], None]


@dataclass
class UpgradeResult:
    project_name: str
    plan: "Plan | None" = None  # None when the stack was started instead (nothing ran)
    pulled: "list[Pulled]" = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # image -> why it is not pulled
    seconds: float = 0.0
    started: "UpResult | None" = None  # `rebuild` of a stack that did not run: what `up` did

    @property
    def failed_pulls(self) -> "list[Pulled]":
        return [p for p in self.pulled if p.outcome == "failed"]


def running_stack(workspace: Workspace, command: str) -> tuple[Prepared, "Stack"]:
    """The saved configuration, rendered, and the stack it runs as; UserError when there is
    nothing to upgrade or the configuration asks for another stack than the one running."""
    refuse_if_restoring(workspace)
    applied = last_applied(workspace, swarm=(
        f"`compose-tunnel {command}` replaces containers on this machine's engine; {{project}} runs on a swarm",
        "`compose-tunnel up` deploys newer images there (Swarm updates each service)"))
    if state.load_settings(workspace) is None:
        raise UserError(f"no saved configuration in {workspace.root} to {command}",
                        hint="run `compose-tunnel up` with your flags first")
    prepared = prepare(workspace, None)
    settings = prepared.settings
    if (settings.project_name, tuple(prepared.plan.names), settings.target) != \
            (applied.project_name, applied.profiles, applied.target):
        raise UserError(
            f"the saved configuration ({settings.project_name}: {', '.join(prepared.plan.names)}) is not "
            f"what runs ({applied.project_name}: {', '.join(applied.profiles)})",
            hint=f"`compose-tunnel up` applies the configuration; `{command}` then renews what it runs")
    stack = stack_for(workspace, settings.project_name)
    stack.check(compose_version_needed(prepared.files[COMPOSE].text))
    return prepared, stack


def upgrade(workspace: Workspace, *, say: Say, build: bool = False, pull: bool = True,
            wait_seconds: float = DEFAULT_WAIT_SECONDS, command: str = "upgrade") -> UpgradeResult:
    """Pull (and with `build`, build), then replace what changed; wait until all is ready.

    A pull that fails is reported and the rest goes on (UpgradeResult.failed_pulls). A new
    container that fails, or a failed migration, raises StartFailed with the old containers
    still serving."""
    from ..replacements import image_of, images_to_pull, plan as make_plan, policies
    from ..rollout import Rollout

    began = time.monotonic()
    prepared, stack = running_stack(workspace, command)
    written = write(workspace, prepared, save_settings=False)
    if written:
        say("rendered again: " + ", ".join(sorted(written)))
    rollout = Rollout(stack, say, wait_seconds)
    model = stack.project()
    policies(model)  # an x-rollout it cannot use is refused before anything changes
    project = stack.project_name
    names = [image_of(project, name, service or {}) for name, service in (model.get("services") or {}).items()]
    result = UpgradeResult(project)
    if pull:
        wanted, result.skipped = images_to_pull(model, project, rollout.images(names))
        if wanted:
            say(f"pulling {len(wanted)} image(s): {', '.join(wanted)}")
        for pulled in rollout.pull(wanted):
            say(f"  {pulled.image}: {pulled.outcome}" + (f" ({pulled.detail})" if pulled.detail else ""))
            result.pulled.append(pulled)
        for image, reason in result.skipped.items():
            say(f"  {image}: not pulled, {reason}")
    if build:
        say("building the images that have a build context")
        rollout.build()
    images = {name: (image.id if image else None) for name, image in rollout.images(names).items()}
    result.plan = make_plan(model, rollout.wanted_hashes(), images, rollout.containers(), project=project)
    if not result.plan.replacements:
        say("every container runs its current image and configuration: nothing to replace")
    rollout.run(result.plan)
    stack.wait_until_ready(wait_seconds, say)
    record_applied(workspace, prepared)
    result.seconds = time.monotonic() - began
    return result


def record_applied(workspace: Workspace, prepared: Prepared) -> None:
    """What runs now is what these files say (`down` reads them)."""
    settings = prepared.settings
    workspace.write({
        APPLIED_COMPOSE: prepared.files[COMPOSE],
        APPLIED_DOTENV: prepared.files[DOTENV],
        state.APPLIED: state.Applied(settings.project_name, tuple(prepared.plan.names), settings.target).file(),
    })


def upgrade_steps(workspace: Workspace, *, build: bool = False, pull: bool = True,
                  command: str = "upgrade") -> list[str]:
    """What `upgrade` would do, for --dry-run: what it would pull or build, then what it would
    replace and how, judged by the images here now. Writes and pulls nothing."""
    from ..replacements import image_of, images_to_pull, plan as make_plan
    from ..rollout import Rollout

    prepared, stack = running_stack(workspace, command)
    lines = []
    stale = workspace.changes(prepared.files)
    if stale:
        lines.append("would render again: " + ", ".join(sorted(stale)) + " (the services these files "
                     "configure are judged below by the files as they are now)")
    rollout = Rollout(stack, lambda _line: None, DEFAULT_WAIT_SECONDS)
    model = stack.project()
    project = stack.project_name
    names = [image_of(project, name, service or {}) for name, service in (model.get("services") or {}).items()]
    local = rollout.images(names)
    if pull:
        wanted, skipped = images_to_pull(model, project, local)
        if wanted:
            lines.append(f"would pull: {', '.join(wanted)} (a newer image replaces what runs it)")
        lines += [f"would not pull {image}: {reason}" for image, reason in skipped.items()]
    if build:
        lines.append("would build the images that have a build context (a new image replaces what runs it)")
    images = {name: (image.id if image else None) for name, image in local.items()}
    plan = make_plan(model, rollout.wanted_hashes(), images, rollout.containers(), project=project)
    if not plan.replacements:
        return lines + ["would replace nothing: every container runs the image here now and its "
                        "configuration"] + plan.lines()
    return lines + ["would replace (in this order):"] + [
        line if line.startswith("unchanged") else f"  {line}" for line in plan.lines()]
