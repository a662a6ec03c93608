"""`plugin install|remove`: the docker CLI plugin (dockerplugin) in the folder the docker CLI
reads, written whole (a temporary sibling renamed) and removed only when it is ours."""

from __future__ import annotations

import sys
from pathlib import Path

from .. import __version__
from ..dockerplugin import NAME, is_ours, plugins_dir, script
from ..errors import UserError
from ..workspace import replace_file

EXECUTABLE_MODE = 0o755
PROGRAM = [sys.executable, "-m", "compose_tunnel"]


def _existing(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}",
                        hint="check DOCKER_CONFIG and the folder's permissions") from None


def install() -> list[str]:
    """Write docker-tunnel; replaces an earlier one of ours, never another program."""
    path = plugins_dir() / NAME
    existing = _existing(path)
    if existing is not None and not is_ours(existing):
        raise UserError(f"{path} exists and is not compose-tunnel's plugin",
                        hint="move it away first, or set DOCKER_CONFIG to another folder")
    text = script(PROGRAM, __version__)
    if existing == text:
        return [f"{path} is up to date: `docker tunnel --help` lists the commands"]
    replace_file(path, text, EXECUTABLE_MODE, "check DOCKER_CONFIG and the folder's permissions")
    return [f"{'wrote' if existing is None else 'updated'} {path}: `docker tunnel up|down|doctor|…` "
            "now run compose-tunnel (`docker tunnel --help` lists the commands)"]


def remove() -> list[str]:
    path = plugins_dir() / NAME
    existing = _existing(path)
    if existing is None:
        return [f"no plugin to remove ({path} does not exist)"]
    if not is_ours(existing):
        raise UserError(f"{path} is not compose-tunnel's plugin: not removing it",
                        hint="remove it yourself if it is yours to remove")
    try:
        path.unlink()
    except OSError as error:
        raise UserError(f"cannot remove {path}: {error.strerror or error}",
                        hint="check the folder's permissions") from None
    return [f"removed {path}"]
