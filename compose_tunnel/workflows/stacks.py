"""The stack a command acts on: the project as rendered now, or as `up` last applied it, on
docker compose or on the swarm this engine manages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import state
from ..errors import UserError
from ..renderers import COMPOSE, DOTENV
from ..workspace import Workspace

if TYPE_CHECKING:
    from ..stack import Stack

APPLIED_COMPOSE = "applied/compose.yml"
APPLIED_DOTENV = "applied/.env"


def stack_for(workspace: Workspace, project_name: str, *, applied: bool = False,
              target: str = "compose") -> "Stack":
    """The project on docker compose, or on the swarm this engine manages (`target`)."""
    if target == "swarm":
        from ..swarmstack import SwarmStack as Stack
    else:
        from ..stack import Stack

    compose, dotenv = (APPLIED_COMPOSE, APPLIED_DOTENV) if applied else (COMPOSE, DOTENV)
    return Stack(workspace.root, project_name, workspace.path(compose), workspace.path(dotenv))


def last_applied(workspace: Workspace, *, nothing: str = "", swarm: tuple[str, str] | None = None
                 ) -> state.Applied:
    """What `up` last applied; UserError when nothing was (`nothing` ends that message), or when
    it runs on a swarm and the command works on docker compose only (`swarm`: message, hint)."""
    applied = state.load_applied(workspace)
    if applied is None:
        raise UserError(f"nothing has been started from {workspace.root}{nothing}",
                        hint="run `compose-tunnel up` first, or pass the --workdir you used")
    if swarm is not None and applied.target == "swarm":
        raise UserError(swarm[0].format(project=applied.project_name), hint=swarm[1])
    return applied


def applied_stack(workspace: Workspace) -> "Stack":
    """The stack `up` last started, with Docker checked as for every engine command."""
    applied = last_applied(workspace)
    stack = stack_for(workspace, applied.project_name, applied=True, target=applied.target)
    stack.check()
    return stack
