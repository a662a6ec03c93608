"""The Compose v2 merge: a base compose file plus overlays folded into one document.

Why not `docker compose config`? It interpolates variables, makes paths absolute
and expands every short syntax; the file we write must stay portable, with
`${VAR:-x}` and `./data` as the user wrote them. So this module merges the raw,
un-interpolated documents with the rules of the real binary (compose-go v2,
package `override`), such that

    docker compose -f merged.yml config  ==  docker compose -f a.yml -f b.yml … config

for a merged.yml written in the same project directory as a.yml. The rules:

* mappings merge key by key, recursively (`x-` extensions too); scalars and
  mismatched-but-compatible values are replaced by the later file; sequences
  are appended, then de-duplicated by the key Compose uses for that field
  (`_UNIQUE`): volumes by target, ports by host ip/port/protocol, secrets and
  configs by target, environment and labels by name, … — the later entry wins
  and takes the place of the first one;
* per-field rules (`_SPECIALS`): command/entrypoint/healthcheck.test replaced,
  key=value fields (environment, labels, build.args, sysctls, …) accepted as a
  list or a map, depends_on/networks in short or long form, logging options
  dropped when the driver changes, build as a string or a mapping, each ulimit
  replaced whole, network ipam config merged by subnet; and where Compose has made the
  earlier files canonical by then in a way that changes the merge, as it has: `gpus: all` is
  a list of one request, `build.ssh` a mapping, a resource's `external: {name: N}` is
  `external: true, name: N`;
* `!reset` removes what earlier files set at that path, `!override` replaces it;
* `extends` is resolved in each file before that file is merged, as Compose does, and so is
  `include` (module `include`): a base or an included project read from another file comes
  with its relative paths made absolute (module `rebase`), so the result refers to no other
  compose file. Like Compose, `extends.file` and `include` paths resolve against the project
  directory unless the caller says otherwise (profiles: the overlay's own directory).

Compose converts a key=value map into a `k=v` list as soon as it merges two of
them; later `!reset` of a single key then no longer applies (it only removes
mapping keys). We keep the same representation so that chains of three files
behave as in Compose.

Limitation: Compose interpolates each file before merging. We cannot, so an
entry whose de-duplication key holds a `$` is never de-duplicated here: we keep
every entry of that list and Compose, which de-duplicates a single file the same
way, removes the duplicates once it knows the variables. Short syntax holding a
variable is not validated either, and a path that starts with a variable in an
extended or included file cannot be made absolute (it stays as written).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path as Path_
from typing import Any

from .errors import UserError
from .mergerules import DEPENDS_ON_DEFAULT, Merger, as_mapping, enforce_unicity
from .yamlio import load_compose_text, no_cycle_collection, read_compose_text
from .yamltags import Override, Reset

Path = tuple  # of mapping keys (str) and sequence indexes (int)


def merge_files(paths: list[str | os.PathLike],
                trusted: Callable[[Path_], bool] = lambda path: False,
                reference_dir: Callable[[Path_], Path_] | None = None) -> dict:
    """Load, validate and merge compose files; the first is the base, the others overlay it.

    The project is validated as Compose validates it (module `validate`): after each file, and
    whole at the end. Files for which `trusted` is true (the built-in profiles: the tests check
    them in every combination) are known valid: a merge of them alone is not validated.
    `extends.file` and `include` paths in a file resolve against `reference_dir(file)`: by
    default the project directory (the first file's), as Compose resolves them. Files reached
    through them are merged in, so the result refers to no other compose file."""
    paths = [Path_(p) for p in paths]
    project_dir = paths[0].parent.absolute() if paths else Path_.cwd()
    directory_of = reference_dir or (lambda path: project_dir)
    reading = Reading(trusted, validating=not all(trusted(p) for p in paths))
    with no_cycle_collection():
        merged, validation = _merge(paths, [os.fspath(p) for p in paths],
                                    [Path_(directory_of(p)).absolute() for p in paths], reading)
        if validation is not None:
            validation.finish_project()
    return merged


MAX_FILES_READ = 1000  # include/extends fan-out bound: hostile inputs fail fast
MAX_CHAIN = 64  # extends and include depth, well within Python's recursion limit


class Reading:
    """The files one merge reads, kept for locating errors in them; whether it validates."""

    def __init__(self, trusted: Callable[[Path_], bool] = lambda path: False, validating: bool = True) -> None:
        self.trusted = trusted
        self.validating = validating
        self.validation: Any = None  # the merge's Validation, while it validates
        self.files: list[tuple[str, str, dict]] = []  # (source, text, document)
        self.extended: dict[Path_, _ServicesFile] = {}
        self.including: list[Path_] = []  # the chain of included files being read, for cycles
        self.max_chain = MAX_CHAIN

    def merge_project(self, paths: list[Path_], project_dir: Path_) -> dict:
        """An included project's files, merged (and validated) as this merge merges its own."""
        return merge_documents(list(paths), [os.fspath(p) for p in paths],
                               [project_dir] * len(paths), self)

    def load(self, path: Path_) -> dict:
        if len(self.files) >= MAX_FILES_READ:
            raise UserError(f"{path}: more than {MAX_FILES_READ} compose files read through include "
                            "and extends", hint="include or extend each file once")
        text = read_compose_text(path)
        doc = load_compose_text(text, os.fspath(path))
        self.files.append((os.fspath(path), text, doc))
        return doc

    def extended_file(self, reference: Any, directory: Path_, source: str, at: str) -> _ServicesFile:
        """The services of an `extends.file`, as Compose reads it: unvalidated (the merge
        result is), its relative paths made absolute against its own directory."""
        from .rebase import rebase_document, resolve

        if not isinstance(reference, str):
            raise UserError(f"{source}: {at}.extends.file must be a string",
                            hint="extends: {file: other.yml, service: NAME}")
        path = resolve(directory, reference)
        if path not in self.extended:
            if not path.is_file():
                raise UserError(f"{source}: {at} extends {reference!r}: open {path}: no such file",
                                hint=f"extends.file is read from {directory}")
            tagged: list[Path] = []
            doc = _strip_tags(self.load(path), (), tagged)
            if self.validation is not None:
                self.validation.read_alone(doc, os.fspath(path))
            rebase_document(doc, path.parent)
            services = doc.get("services")
            if not isinstance(services, dict):
                raise UserError(f"{source}: {at} extends {reference!r}, which has no services",
                                hint="extends.file names a compose file that defines the service")
            self.extended[path] = _ServicesFile(services, tagged, os.fspath(path), path.parent)
        return self.extended[path]


def merge_documents(docs: list[dict | Path_], sources: list[str] | None = None,
                    reference_dirs: list[Path_] | None = None, reading: Reading | None = None) -> dict:
    """Merge compose documents (as `yamlio.load_compose_text` returns them, or paths, read at
    their turn), validated as Compose validates a project's files.

    `sources` name the documents in error messages; `reference_dirs` are where their
    `extends.file` and `include` paths resolve (the current directory by default). The inputs
    are not modified.
    """
    return _merge(docs, sources, reference_dirs, reading or Reading())[0]


def _merge(docs: list[dict | Path_], sources: list[str] | None, reference_dirs: list[Path_] | None,
           reading: Reading) -> tuple[dict, Any]:
    sources = sources or [f"<document {i + 1}>" for i in range(len(docs))]
    reference_dirs = reference_dirs or [Path_.cwd()] * len(docs)
    validation = None
    if reading.validating:
        from .validate import Validation

        validation = Validation(reading.files, _fold)
    outer, reading.validation = reading.validation, validation
    try:
        return _merge_validated(docs, sources, reference_dirs, reading, validation)
    finally:
        reading.validation = outer


def _merge_validated(docs: list[dict | Path_], sources: list[str], reference_dirs: list[Path_],
                     reading: Reading, validation: Any) -> tuple[dict, Any]:
    merged: dict = {}
    for doc, source, directory in zip(docs, sources, reference_dirs, strict=True):
        if not isinstance(doc, dict):
            doc = reading.load(doc)
        _check_document(doc, source)
        tagged: list[Path] = []
        doc = _strip_tags(doc, (), tagged)
        _apply_extends(_ServicesFile(doc.get("services"), tagged, source, directory), reading)
        if "include" in doc:
            from .include import import_includes

            import_includes(doc, source, directory, reading)
        if validation is not None:
            validation.add(doc, tagged, source, check=not reading.trusted(Path_(source)))
        merged = _fold(merged, doc, tagged, source)
        for name, service in (merged.get("services") or {}).items():
            if not isinstance(service, dict):  # e.g. `web:` left empty with no earlier web
                raise UserError(f"{source}: services.{name} must be a mapping",
                                hint=f"{name}:, then its keys indented below it (image:, ...)")
    merged.pop("version", None)  # obsolete: Compose ignores it and warns
    enforce_unicity(merged, ())
    if validation is not None:
        validation.finish_files()
    return merged, validation


def _fold(merged: dict, doc: dict, tagged: list[Path], source: str) -> dict:
    """One document merged into what the earlier ones made (in place), as Compose merges it:
    what its `!reset`/`!override` tags name removed first."""
    for path in tagged:
        _delete_path(merged, path)
    return Merger(source).merge_mappings(merged, doc, ())


# --- checks on each document ---------------------------------------------------


def _check_document(doc: dict, source: str) -> None:
    """The errors Compose raises on a document before merging it (its shape where its
    `extends` are resolved)."""
    if "services" not in doc or isinstance(doc["services"], Reset):
        return
    services = _untag(doc["services"])
    if not isinstance(services, dict):
        raise UserError(f"{source}: services must be a mapping",
                        hint="services:, then one indented NAME: per service")
    for name, service in services.items():
        service = _untag(service)
        if service is not None and not isinstance(service, dict):
            raise UserError(f"{source}: services.{name} must be a mapping",
                            hint=f"{name}:, then its keys indented below it (image:, ...)")


def _untag(value: Any) -> Any:
    return value.value if isinstance(value, (Reset, Override)) else value


# --- !reset / !override ----------------------------------------------------------

_DROP = object()


def _strip_tags(value: Any, path: Path, tagged: list[Path]) -> Any:
    """Copy `value` without its tags, collecting the paths tagged !reset or !override.

    A `!reset` entry is left out; an `!override` entry keeps its value. Both
    paths are then removed from what the earlier files built, as Compose does.
    """
    if isinstance(value, Reset):
        tagged.append(path)
        return _DROP
    if isinstance(value, Override):
        tagged.append(path)
        return _strip_tags(value.value, path, [])  # Compose reads no tag below !override
    if isinstance(value, dict):
        items = ((k, _strip_tags(v, (*path, k), tagged)) for k, v in value.items())
        return {k: v for k, v in items if v is not _DROP}
    if isinstance(value, list):
        items = (_strip_tags(v, (*path, i), tagged) for i, v in enumerate(value))
        return [v for v in items if v is not _DROP]
    return value


def _delete_path(doc: Any, path: Path) -> None:
    """Remove the mapping entry at `path`; Compose never removes sequence items this way.

    Compose applies the reset to its canonical form, where networks and
    depends_on are mappings even if written as lists, and build is a mapping.
    """
    node = doc
    for depth, key in enumerate(path[:-1]):
        if not isinstance(node, dict) or key not in node:
            return
        canonical = _canonical_mapping(node[key], path[: depth + 1])
        if canonical is not None:
            node[key] = canonical
        node = node[key]
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _canonical_mapping(value: Any, path: Path) -> dict | None:
    if isinstance(value, dict) or len(path) != 3 or path[0] != "services":
        return None
    if path[2] == "networks" and isinstance(value, list):
        return as_mapping(value, None)
    if path[2] == "depends_on" and isinstance(value, list):
        return as_mapping(value, DEPENDS_ON_DEFAULT)
    if path[2] == "build" and isinstance(value, str):
        return {"context": value}
    if path[2] == "extends" and isinstance(value, str):
        return {"service": value}
    return None


# --- extends ---------------------------------------------------------------------------


class _ServicesFile:
    """The services of one file, their `!reset`/`!override` paths and where `extends.file`
    resolves; `extends` is resolved in place, each service once."""

    def __init__(self, services: Any, tagged: list[Path], source: str, directory: Path_) -> None:
        self.services = services if isinstance(services, dict) else {}
        self.tagged = tagged
        self.source = source
        self.directory = directory


def _apply_extends(file: _ServicesFile, reading: Reading) -> None:
    """Resolve every `extends` of a file before the file is merged, as Compose does.

    Per file, so a later overlay that changes the extended service does not reach the
    services built from it. A base from another file comes with its relative paths made
    absolute, since it keeps pointing at its own directory's files."""
    for name in list(file.services):
        _extend(file, name, reading, [])


def _extend(file: _ServicesFile, name: str, reading: Reading, chain: list[tuple[str, str]]) -> Any:
    service = file.services[name]
    extends = service.get("extends") if isinstance(service, dict) else None
    if extends is None:
        return service
    link = (file.source, name)
    if len(chain) >= MAX_CHAIN:
        raise UserError(f"{file.source}: services.{name}: extends chain deeper than {MAX_CHAIN}",
                        hint="extend a service that does not extend another one")
    if link in chain:
        steps = [f"{service_name} ({Path_(source).name})" for source, service_name in [*chain, link]]
        raise UserError(f"{file.source}: services.{name}: Circular reference in extends: "
                        f"{' -> '.join(steps)}", hint="break the cycle: a service cannot extend itself")
    ref = extends if isinstance(extends, str) else extends.get("service") if isinstance(extends, dict) else ""
    if not isinstance(ref, str):
        raise UserError(f"{file.source}: extends.{name}.service is required",
                        hint="name the service to extend: extends: {service: NAME}")
    at = f"services.{name}"
    if isinstance(extends, dict) and "file" in extends:
        target = reading.extended_file(extends["file"], file.directory, file.source, at)
        if ref not in target.services:
            raise UserError(f'cannot extend service "{name}" in {file.source}: service "{ref}" not '
                            f"found in {extends['file']}", hint=f"services there: "
                            f"{', '.join(target.services) or 'none'}")
    else:
        target = file
        if ref not in file.services:
            raise UserError(f'cannot extend service "{name}" in {file.source}: service "{ref}" not found',
                            hint="extends without `file:` names a service of the same file")
    if target.services[ref] is None:  # Compose extends nothing then (and shows `extends` as written)
        file.services[name] = {k: v for k, v in service.items() if k != "extends"}
        return file.services[name]
    if not isinstance(target.services[ref], dict):
        raise UserError(f"{target.source}: services.{ref} must be a mapping",
                        hint=f"{ref}:, then its keys indented below it (image:, ...)")
    base = {"services": {name: copy.deepcopy(_extend(target, ref, reading, [*chain, link]))}}
    for path in file.tagged:  # the extending service's !reset/!override apply to its base (inside it:
        if path[:2] == ("services", name) and len(path) > 2:  # one on the service itself spares the base)
            _delete_path(base, path)
    own = {k: v for k, v in service.items() if k != "extends"}
    merged = Merger(file.source).merge(base["services"][name], own, ("services", name))
    file.services[name] = merged
    return merged
