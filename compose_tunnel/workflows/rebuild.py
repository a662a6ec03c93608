"""`rebuild`: images built again from their build contexts (and newer ones pulled), then what
changed replaced as `upgrade` replaces it, with no gap for the app. A stack that does not run
is started (`up --build`); on a swarm, the stack is taken down and deployed again."""

from __future__ import annotations

from .. import state
from ..choices import DEFAULT_WAIT_SECONDS
from ..errors import UserError
from ..restoring import refuse_if_restoring
from ..workspace import Workspace
from .down import down
from .prepare import prepare, write
from .stacks import stack_for
from .up import Say, up_prepared, up_steps
from .upgrade import UpgradeResult, upgrade, upgrade_steps


def rebuild(
    workspace: Workspace, *, say: Say, pull: bool = True, wait_seconds: float = DEFAULT_WAIT_SECONDS
) -> UpgradeResult:
    """Build, pull and replace what changed; or start the stack when nothing of it runs."""
    refuse_if_restoring(workspace)
    if replaces(workspace):
        return upgrade(workspace, say=say, build=True, pull=pull, wait_seconds=wait_seconds,
                       command="rebuild")
    stopped = down(workspace)  # a swarm's stack, or what is left of a stopped project
    if stopped and stopped.containers:
        say(f"stopped {stopped.project_name}")
    prepared = prepare(workspace, None)
    if pull:
        write(workspace, prepared, save_settings=False)
        say("pulling newer images")
        stack_for(workspace, prepared.settings.project_name).pull()  # here; a swarm's nodes pull theirs
    started = up_prepared(workspace, prepared, say=say, build=True, wait_seconds=wait_seconds)
    return UpgradeResult(prepared.settings.project_name, started=started)


def rebuild_steps(workspace: Workspace, *, pull: bool = True) -> list[str]:
    """What `rebuild` would do, for --dry-run."""
    if replaces(workspace):
        return upgrade_steps(workspace, build=True, pull=pull, command="rebuild")
    prepared = prepare(workspace, None)
    return ([f"nothing of {prepared.settings.project_name} runs here: would start it as `up --build` does"]
            + up_steps(workspace, prepared, build=True))


def replaces(workspace: Workspace) -> bool:
    """Whether `rebuild` replaces containers (a stack runs here) rather than starting anew."""
    if state.load_settings(workspace) is None:
        raise UserError(
            f"no saved configuration in {workspace.root} to rebuild",
            hint="run `compose-tunnel up` with your flags first",
        )
    applied = state.load_applied(workspace)
    return applied is not None and applied.target == "compose" and running(workspace, applied.project_name)


def running(workspace: Workspace, project_name: str) -> bool:
    """Whether any container of the project runs."""
    stack = stack_for(workspace, project_name, applied=True)
    stack.check()
    return any(s.status == "running" for s in stack.states())
