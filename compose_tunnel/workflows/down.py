"""`down`: stop what `up` last applied."""

from __future__ import annotations

from dataclasses import dataclass

from .. import state
from ..workspace import Workspace
from .stacks import stack_for
from .steps import owned_secrets


@dataclass
class DownResult:
    project_name: str
    containers: int  # how many containers there were to stop


def down(workspace: Workspace, *, volumes: bool = False) -> DownResult | None:
    """Stop what `up` last applied (whatever the configuration says now).

    With the volumes go the bootstraps' state (Garage's keys, Hatchet's tenant): their stored
    results are forgotten too, so the next `up` creates them anew instead of using stale ones.
    """
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
