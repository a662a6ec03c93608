"""`include`: another compose project's resources imported into the file that includes it.

As Compose (v2.40) does it: each entry is loaded as a project of its own — its files merged, its
own `include` and `extends` resolved, its relative paths against its project directory (the
first file's, or `project_directory`), its variables from the including project then its
`env_file` (by default the `.env` of its project directory) — and its services, networks,
volumes, secrets, configs and models are added to the including file. One that the including
file defines too is an error, unless both are the same. A file given after the including one
may still change an imported resource: it is merged later, as any overlay.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UserError
from .rebase import rebase_document, resolve

if TYPE_CHECKING:
    from .merge import Reading

RESOURCE_KINDS = ("services", "networks", "volumes", "secrets", "configs", "models")


def import_includes(doc: dict, source: str, directory: Path, reading: Reading) -> None:
    """Replace `doc`'s `include` by the resources it imports, in place."""
    entries = doc.pop("include")
    if not isinstance(entries, list):
        raise UserError(f"{source}: include must be a list", hint="include: [path/to/compose.yml]")
    for entry in entries:
        project = _load_project(_entry(entry, source), source, directory, reading)
        for kind in RESOURCE_KINDS:
            imported = project.get(kind) or {}
            if not imported:
                continue
            own = doc.get(kind)
            own = own if isinstance(own, dict) else {}
            for name, definition in imported.items():
                if name in own and own[name] != definition:
                    raise UserError(f"{source}: {kind}.{name} conflicts with imported resource",
                                    hint="rename it, or change it in the included file (or in a "
                                         "file given after this one)")
                own[name] = definition
            doc[kind] = own


def _entry(entry: Any, source: str) -> dict:
    if isinstance(entry, str):
        entry = {"path": entry}
    if not isinstance(entry, dict) or "path" not in entry:
        raise UserError(f"{source}: an include entry needs a path", hint="include: [path/to/compose.yml]")
    paths = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
    env_files = entry.get("env_file")
    env_files = env_files if isinstance(env_files, list) else [] if env_files is None else [env_files]
    for value in [*paths, *env_files, entry.get("project_directory", "")]:
        if not isinstance(value, str):
            raise UserError(f"{source}: include paths must be strings, not {value!r}",
                            hint="include: [{path: compose.yml, env_file: .env, project_directory: .}]")
        if "$" in value:
            raise UserError(f"{source}: include path {value!r} holds a variable",
                            hint="compose-tunnel resolves includes before interpolation: write the path")
    return {"paths": paths, "env_files": env_files, "project_directory": entry.get("project_directory")}


def _load_project(entry: dict, source: str, directory: Path, reading: Reading) -> dict:
    from .merge import MAX_CHAIN, merge_documents
    from .variables import bind, bind_environment

    paths = [resolve(directory, path) for path in entry["paths"]]
    main = paths[0]
    chain = reading.including or [Path(os.path.abspath(source))]
    if len(chain) > MAX_CHAIN:
        raise UserError(f"{source}: include chain deeper than {MAX_CHAIN}", hint="include fewer levels deep")
    if main in chain:
        cycle = " -> ".join(str(p) for p in (*chain, main))
        raise UserError(f"include cycle detected: {cycle}", hint="a file cannot include itself")
    for path in paths:
        if not path.is_file():
            raise UserError(f"{source}: include {path}: no such file",
                            hint=f"include paths are read from {directory}")
    project_dir = main.parent
    if entry["project_directory"]:
        project_dir = resolve(directory, entry["project_directory"])
    env = _environment(entry["env_files"], project_dir, directory, source)
    docs = [reading.load(path) for path in paths]
    saved, reading.including = reading.including, [*chain, main]
    try:
        project = merge_documents(docs, [os.fspath(p) for p in paths], [project_dir] * len(docs), reading)
    finally:
        reading.including = saved
    rebase_document(project, project_dir)
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
