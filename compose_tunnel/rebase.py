"""Relative paths of a file read from another directory, made absolute as Compose makes them.

Compose reads an extended file (`extends.file`) and an included project (`include`) with their
own directory as the base of their relative paths. Once their services are merged into another
file, those paths must still point where they pointed, so they become absolute: the same fields
as compose-go's `paths.ResolveRelativePaths`, on the raw syntax (short or long) instead of the
canonical one. Left as written: paths beginning with a variable (what they are is known only
after interpolation), `~` (Compose expands it the same wherever the file is), remote build
contexts and Windows paths.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

_REMOTE_CONTEXT = ("https://", "http://", "git://", "ssh://", "github.com/", "git@")
_WINDOWS = re.compile(r"^(?:[A-Za-z]:|\\\\)")


def resolve(directory: Path, reference: str) -> Path:
    """A file named relative to `directory` (or absolute), cleaned as Go's filepath.Join does."""
    return Path(os.path.normpath(os.path.join(directory, reference)))


def absolute(value: Any, directory: Path) -> Any:
    """`value` joined to `directory` when it is a relative local path (Go's filepath.Join)."""
    if not isinstance(value, str) or not value or value[0] in "/~$" or _WINDOWS.match(value):
        return value
    return str(resolve(directory, value))


def rebase_document(doc: dict, directory: Path) -> None:
    """Every relative path of a loaded document made absolute against `directory`, in place."""
    for service in (doc.get("services") or {}).values():
        if isinstance(service, dict):
            rebase_service(service, directory)
    for kind in ("secrets", "configs"):
        for definition in (doc.get(kind) or {}).values():
            if isinstance(definition, dict) and "file" in definition:
                definition["file"] = absolute(definition["file"], directory)
    for volume in (doc.get("volumes") or {}).values():
        options = volume.get("driver_opts") if isinstance(volume, dict) else None
        if volume and volume.get("driver") == "local" and isinstance(options, dict):
            if options.get("o") == "bind" and "device" in options:
                options["device"] = absolute(options["device"], directory)


def rebase_service(service: dict, directory: Path) -> None:
    """A service's relative paths made absolute against `directory`, in place."""
    build = service.get("build")
    if isinstance(build, str):
        service["build"] = _context(build, directory)
    elif isinstance(build, dict):
        if "context" in build:
            build["context"] = _context(build["context"], directory)
        _rebase_key_values(build, "additional_contexts", directory, _context)
        _rebase_key_values(build, "ssh", directory, absolute)
    if "env_file" in service:
        service["env_file"] = _each(service["env_file"], directory, path_key="path")
    if "label_file" in service:
        service["label_file"] = _each(service["label_file"], directory)
    extends = service.get("extends")
    if isinstance(extends, dict) and "file" in extends:
        extends["file"] = absolute(extends["file"], directory)
    volumes = service.get("volumes")
    if isinstance(volumes, list):
        service["volumes"] = [_volume(entry, directory) for entry in volumes]
    watch = (service.get("develop") or {}).get("watch") if isinstance(service.get("develop"), dict) else None
    for rule in watch if isinstance(watch, list) else []:
        if isinstance(rule, dict) and "path" in rule:
            path = absolute(rule["path"], directory)
            rule["path"] = os.path.realpath(path) if isinstance(path, str) and os.path.islink(path) else path


def _context(value: Any, directory: Path) -> Any:
    if isinstance(value, str) and ("://" in value or value.startswith(("service:", *_REMOTE_CONTEXT))):
        return value
    return absolute(value, directory)


def _rebase_key_values(mapping: dict, key: str, directory: Path, rebase) -> None:
    """A `name: path` mapping or a `name=path` list (build.additional_contexts, build.ssh)."""
    value = mapping.get(key)
    if isinstance(value, dict):
        mapping[key] = {name: rebase(path, directory) for name, path in value.items()}
    elif isinstance(value, list):
        entries = []
        for entry in value:
            if isinstance(entry, str) and "=" in entry:
                name, path = entry.split("=", 1)
                entry = f"{name}={rebase(path, directory)}"
            entries.append(entry)
        mapping[key] = entries


def _each(value: Any, directory: Path, path_key: str | None = None) -> Any:
    """A path, a list of paths, or (env_file) a list of `{path: …}` entries."""
    if isinstance(value, str):
        return absolute(value, directory)
    if not isinstance(value, list):
        return value
    entries = []
    for entry in value:
        if isinstance(entry, dict) and path_key in entry:
            entry = {**entry, path_key: absolute(entry[path_key], directory)}
        else:
            entry = absolute(entry, directory)
        entries.append(entry)
    return entries


def _volume(entry: Any, directory: Path) -> Any:
    """Short syntax: a source starting with `.` is a bind mount (compose-go's isFilePath)."""
    if isinstance(entry, dict):
        if entry.get("type") == "bind" and "source" in entry:
            return {**entry, "source": absolute(entry["source"], directory)}
        return entry
    if isinstance(entry, str) and entry.startswith("."):
        source, separator, rest = entry.partition(":")
        return absolute(source, directory) + separator + rest
    return entry
