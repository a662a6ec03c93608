"""The mark of a restore under way: what keeps `up` from starting a half-restored project.

`restore` writes it into the workdir before it changes anything and removes it once every
database and volume is back. While it is there, `up` and `rebuild` refuse (a project with half
its data would start as if it were whole), and `restore` run again with the same archive knows
its own unfinished work, which it redoes from the start, instead of taking it for data to keep.
"""

from __future__ import annotations

import tomllib

import tomli_w

from .errors import UserError
from .workspace import SECRET_MODE, FileContent, Workspace

MARKER = "restoring.toml"


def marker_file(archive: str, archive_digest: str, project_name: str) -> FileContent:
    data = {"archive": archive, "archive_digest": archive_digest, "project_name": project_name}
    return FileContent("# A restore into this workdir has not finished: `up` refuses until it has.\n"
                       + tomli_w.dumps(data), SECRET_MODE)


def load_marker(workspace: Workspace) -> dict | None:
    text = workspace.read(MARKER)
    if text is None:
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}  # torn by a crash: still a restore that did not finish


def refuse_if_restoring(workspace: Workspace) -> None:
    marker = load_marker(workspace)
    if marker is None:
        return
    archive = marker.get("archive") or "ARCHIVE"
    raise UserError(f"a restore into {workspace.root} did not finish (from {archive}): its project "
                    "would start with part of its data",
                    hint=f"run `compose-tunnel restore {archive}` again to complete it")
