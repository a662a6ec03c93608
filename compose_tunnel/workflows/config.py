"""`config show` and `config reset`: the saved configuration, shown with the secrets masked
(their names only, never a value), or forgotten (generated files and secrets are kept)."""

from __future__ import annotations

from typing import Any

from .. import state
from ..workspace import Workspace

MASK = "********"


def saved_configuration(workspace: Workspace) -> dict[str, Any]:
    """The saved settings, the flags that replay them, and which secrets exist (masked); the
    settings and flags are None when nothing is saved."""
    settings = state.load_settings(workspace)
    secrets = state.load_secrets(workspace)
    return {
        "workdir": str(workspace.root),
        "settings": settings.to_options() if settings else None,
        "flags": " ".join(settings.to_args()) if settings else None,
        "secrets": {name: MASK for name in sorted(secrets.values)},
    }


def configuration_file(workspace: Workspace) -> str:
    return str(workspace.path(state.CONFIG))


def forget_configuration(workspace: Workspace) -> bool:
    """Forget the saved settings; False when there were none."""
    if workspace.read(state.CONFIG) is None:
        return False
    workspace.remove(state.CONFIG)
    return True
