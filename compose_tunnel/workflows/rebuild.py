"""`rebuild`: tear down (volumes kept), pull and rebuild images, start again."""

from __future__ import annotations

from .. import state
from ..choices import DEFAULT_WAIT_SECONDS
from ..errors import UserError
from ..restoring import refuse_if_restoring
from ..workspace import Workspace
from .down import down
from .prepare import prepare, write
from .stacks import stack_for
from .up import Say, UpResult, up_prepared


def rebuild(
    workspace: Workspace, *, say: Say, pull: bool = True, wait_seconds: float = DEFAULT_WAIT_SECONDS
) -> UpResult:
    """Tear down (volumes kept), pull and rebuild images, start again from the saved settings."""
    refuse_if_restoring(workspace)
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
