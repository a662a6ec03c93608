"""`generate` and `merge`: files rendered or merged, nothing started."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..change import Change
from ..workspace import Workspace
from .prepare import Prepared, prepare, write


def generate(workspace: Workspace, options: "Change | Mapping[str, Any] | None",
             secret_options: Mapping[str, str] | None = None,
             adopt: Path | None = None) -> tuple[Prepared, list[str]]:
    """Render every file into the workdir and remember the settings; start nothing."""
    prepared = prepare(workspace, options, secret_options, adopt)
    return prepared, write(workspace, prepared, save_settings=True)


def merge_to_text(paths: list[Path]) -> str:
    from ..merge import merge_files
    from ..yamldump import dump_compose_yaml

    return dump_compose_yaml(merge_files(paths))
