"""`include`: another compose project's resources imported into the file that includes it.

As Compose (v2.40) does it: each entry is loaded as a project of its own — its files merged, its
own `include` and `extends` resolved, its relative paths against its project directory (the
first file's, or `project_directory`), its variables from the including project then its
`env_file` (by default the `.env` of its project directory) — and its services, networks,
volumes, secrets, configs and models are added to the including file. One that the including
file defines too is an error, unless the including file writes it as Compose holds the imported
one (in its canonical form: `image: x` is, `ports: ["80:80"]` is not). A file given after the
including one may still change an imported resource: it is merged later, as any overlay.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from .errors import UserError
from .rebase import rebase_document, resolve


class Reading(Protocol):
    """What resolving `include` needs of the merge that reads the including file (it is
    merge.Reading; handed down, so that this module never imports the merge that calls it)."""

    including: list[Path]  # the chain of included files being read, for cycles
    max_chain: int  # how deep include and extends may go

    def merge_project(self, paths: list[Path], project_dir: Path) -> dict:
        """An included project's files merged as the whole merge merges its own."""

RESOURCE_KINDS = ("services", "networks", "volumes", "secrets", "configs", "models")


def import_includes(doc: dict, source: str, directory: Path, reading: Reading) -> None:
    """Replace `doc`'s `include` by the resources it imports, in place."""
    entries = doc.pop("include", None)
    if entries is None:
        return
    if not isinstance(entries, list):
        raise UserError(f"{source}: `include` must be a list", hint="include: [path/to/compose.yml]")
    imported_here: set[tuple[str, str]] = set()
    for entry in entries:
        entry = _entry(entry, source)
        if not entry["paths"]:  # Compose imports nothing, once it has found the env files
            _environment(entry["env_files"], directory, directory, source)
            continue
        project = _load_project(entry, source, directory, reading)
        for kind in RESOURCE_KINDS:
            imported = project.get(kind) or {}
            if not imported:
                continue
            own = doc.get(kind)
            own = own if isinstance(own, dict) else {}
            for name, definition in imported.items():
                if name in own and not _same(kind, name, own[name], definition,
                                             again=(kind, name) in imported_here):
                    raise UserError(f"{source}: {kind}.{name} conflicts with imported resource",
                                    hint="rename it, or change it in the included file (or in a "
                                         "file given after this one)")
                own[name] = definition
                imported_here.add((kind, name))
            doc[kind] = own


def _same(kind: str, name: str, own: Any, imported: Any, again: bool) -> bool:
    """Whether Compose takes a resource the including file defines (or an earlier include
    imported) for the one it imports: only if it is written exactly as Compose holds the
    imported one (canonical, with its defaults)."""
    import copy

    if again:  # both as Compose holds them
        return own == imported

    from .canonical import canonical, set_defaults
    from .interpolation import interpolate
    from .model import ModelError
    from .unicity import unique

    try:
        theirs = set_defaults(unique(canonical(unique(interpolate({kind: {name: copy.deepcopy(imported)}})))))
        mine = interpolate({kind: {name: own}})
    except ModelError:
        return own == imported
    return mine[kind][name] == theirs[kind][name]


def _entry(entry: Any, source: str) -> dict:
    if isinstance(entry, str):
        entry = {"path": entry}
    if not isinstance(entry, dict):
        raise UserError(f"{source}: an include entry is a path or a mapping, not {entry!r}",
                        hint="include: [path/to/compose.yml]")
    path = entry.get("path")
    paths = path if isinstance(path, list) else [] if path is None else [path]
    env_files = entry.get("env_file")
    env_files = env_files if isinstance(env_files, list) else [] if env_files is None else [env_files]
    for value in [*paths, *env_files, entry.get("project_directory") or ""]:
        if not isinstance(value, str):
            raise UserError(f"{source}: include paths must be strings, not {value!r}",
                            hint="include: [{path: compose.yml, env_file: .env, project_directory: .}]")
        if "$" in value:
            raise UserError(f"{source}: include path {value!r} holds a variable",
                            hint="compose-tunnel resolves includes before interpolation: write the path")
    return {"paths": paths, "env_files": env_files, "project_directory": entry.get("project_directory")}


def _load_project(entry: dict, source: str, directory: Path, reading: Reading) -> dict:
    from .variables import bind, bind_environment

    paths = [resolve(directory, path) for path in entry["paths"]]
    main = paths[0]
    chain = reading.including or [Path(os.path.abspath(source))]
    if len(chain) > reading.max_chain:
        raise UserError(f"{source}: include chain deeper than {reading.max_chain}",
                        hint="include fewer levels deep")
    if main in chain:
        cycle = " -> ".join(str(p) for p in (*chain, main))
        raise UserError(f"include cycle detected: {cycle}", hint="a file cannot include itself")
    for path in paths:
        if not path.is_file():
            raise UserError(f"{source}: include {path}: no such file",
                            hint=f"include paths are read from {directory}")
    project_dir = paths_dir = main.parent
    if entry["project_directory"]:
        project_dir = paths_dir = resolve(directory, entry["project_directory"])
        if not project_dir.is_dir():  # Compose then takes the directory it would be in for them
            paths_dir = resolve(directory, os.path.dirname(entry["project_directory"]))
    env = _environment(entry["env_files"], project_dir, directory, source)
    saved, reading.including = reading.including, [*chain, main]
    try:
        project = reading.merge_project(paths, project_dir)
    finally:
        reading.including = saved
    rebase_document(project, paths_dir)
    if env:
        project = bind(project, env)
        for service in (project.get("services") or {}).values():
            if isinstance(service, dict):
                bind_environment(service, env)
    return project


def _environment(env_files: list[str], project_dir: Path, directory: Path, source: str) -> dict[str, str]:
    """The include's own variables: its env files', or its project directory's `.env`."""
    from .envfile import values

    if not env_files:
        default = project_dir / ".env"
        env_files = [os.fspath(default)] if default.is_file() else []
    env: dict[str, str] = {}
    for name in env_files:
        if name == "/dev/null":
            continue
        path = resolve(directory, name)
        if not path.is_file():
            raise UserError(f"{source}: include env_file {path}: no such file",
                            hint=f"include env_file paths are read from {directory}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"{source}: cannot read {path}: {error}", hint="check its permissions") from None
        for key, value in values(text).items():
            env[key] = value  # a later file wins, as in Compose
    return env
