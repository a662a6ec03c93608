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
import math
import os
import re
from collections.abc import Callable
from pathlib import Path as Path_
from typing import Any

from .errors import UserError
from .ports import parse_port
from .yamlio import Override, Reset, load_compose_text, no_cycle_collection, read_compose_text

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
    _enforce_unicity(merged, ())
    if validation is not None:
        validation.finish_files()
    return merged, validation


def _fold(merged: dict, doc: dict, tagged: list[Path], source: str) -> dict:
    """One document merged into what the earlier ones made (in place), as Compose merges it:
    what its `!reset`/`!override` tags name removed first."""
    for path in tagged:
        _delete_path(merged, path)
    return _Merger(source).merge_mappings(merged, doc, ())


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
        return _as_mapping(value, None)
    if path[2] == "depends_on" and isinstance(value, list):
        return _as_mapping(value, _DEPENDS_ON_DEFAULT)
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
    merged = _Merger(file.source).merge(base["services"][name], own, ("services", name))
    file.services[name] = merged
    return merged


# --- the merge ----------------------------------------------------------------------


def _matches(path: Path, pattern: Path) -> bool:
    return len(path) == len(pattern) and all(p in ("*", k) for k, p in zip(path, pattern))


def go_string(value: Any) -> str:
    """Go's `%v` of a YAML value: how Compose writes a map value into a `k=v` entry (a mapping
    as `map[k:v ...]` in key order, a list as `[a b]`)."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_string(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_string(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if value is None:
        return "<nil>"
    return str(value)


def _go_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    from decimal import Decimal  # floats in ports are rare: not paid for by every merge

    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    point = len(digits) + exponent  # position of the decimal point in `text`
    minus = "-" if sign else ""
    if value == 0:
        return minus + "0"
    if -4 <= point - 1 < 21:
        if point <= 0:
            return f"{minus}0.{'0' * -point}{text}"
        if point >= len(text):
            return minus + text + "0" * (point - len(text))
        return f"{minus}{text[:point]}.{text[point:]}"
    mantissa = text[0] + (f".{text[1:]}" if len(text) > 1 else "")
    exp = point - 1
    return f"{minus}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _as_sequence(value: Any) -> list:
    """Compose's convertIntoSequence: a map becomes sorted `k=v` (or bare `k`) entries."""
    if isinstance(value, dict):
        entries = []
        for key, item in value.items():
            if item is None:
                entries.append(key)
            elif isinstance(item, list):
                entries.extend(f"{key}={go_string(v)}" for v in item)
            else:
                entries.append(f"{key}={go_string(item)}")
        return sorted(entries)
    if isinstance(value, list):
        return list(value)
    if isinstance(value, str):
        return [value]
    return []


_DEPENDS_ON_DEFAULT = {"condition": "service_started", "required": True}


def _as_mapping(value: Any, default: dict | None) -> dict:
    """Compose's convertIntoMapping: list entries become keys with `default` values."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(item): copy.deepcopy(default) for item in value}
    return {}


class _Merger:
    """Folds one overlay into the merged document; `source` names it in errors."""

    def __init__(self, source: str) -> None:
        self.source = source

    def merge(self, base: Any, over: Any, path: Path) -> Any:
        for pattern, special in _rules_for(_SPECIALS_BY_LAST, path):
            if _matches(path, pattern):
                return special(self, base, over, path)
        return self.generic(base, over, path)

    def generic(self, base: Any, over: Any, path: Path) -> Any:
        if over is None:
            return base
        if isinstance(base, dict):
            if not isinstance(over, dict):
                raise self._cannot_override(path, "a mapping", over)
            return self.merge_mappings(base, over, path)
        if isinstance(base, list):
            if not isinstance(over, list):
                raise self._cannot_override(path, "a list", over)
            return base + over
        return over

    def _cannot_override(self, path: Path, kind: str, over: Any) -> UserError:
        dotted = ".".join(map(str, path))
        return UserError(
            f"{self.source}: cannot override {dotted}: earlier files set {kind},"
            f" this one a {type(over).__name__}"
        )

    def merge_mappings(self, base: dict, over: dict, path: Path) -> dict:
        """Merge `over` into `base` in place (Go's mergeMappings) and return `base`."""
        for key, value in over.items():
            base[key] = self.merge(base[key], value, (*path, key)) if key in base else value
        return base

    # per-field rules, each (self, base, over, path) -> merged

    def replace(self, base: Any, over: Any, path: Path) -> Any:
        return over

    def to_sequence(self, base: Any, over: Any, path: Path) -> list:
        return _as_sequence(base) + _as_sequence(over)

    def extra_hosts(self, base: Any, over: Any, path: Path) -> list:
        """Appended like key=value lists, but an entry already present is not repeated."""
        merged = _as_sequence(base)
        return merged + [entry for entry in _as_sequence(over) if entry not in merged]

    def build(self, base: Any, over: Any, path: Path) -> dict:
        def as_build(value: Any) -> dict:
            return {"context": value} if isinstance(value, str) else _as_mapping(value, None)

        return self.merge_mappings(as_build(base), as_build(over), path)

    def depends_on(self, base: Any, over: Any, path: Path) -> dict:
        """A short-form entry merges as `condition: service_started, required: true`."""
        base, over = _as_mapping(base, _DEPENDS_ON_DEFAULT), _as_mapping(over, _DEPENDS_ON_DEFAULT)
        return self.merge_mappings(base, over, path)

    def gpus(self, base: Any, over: Any, path: Path) -> Any:
        """Compose has made the earlier `gpus: all` a list of one request by then."""
        return self.generic([{"count": "all"}] if isinstance(base, str) else base, over, path)

    def ssh(self, base: Any, over: Any, path: Path) -> Any:
        """Compose has made the earlier `ssh: [default, id=path]` a mapping by then."""
        if isinstance(base, list) and all(isinstance(entry, str) for entry in base):
            base = {key: (value if sep else None) for key, sep, value in (e.partition("=") for e in base)}
        return self.generic(base, over, path)

    def resources(self, base: Any, over: Any, path: Path) -> Any:
        """A resource defined again: Compose has made the earlier `external: {name: N}` into
        `external: true, name: N` by then."""
        if isinstance(base, dict) and isinstance(over, dict):
            for name in over:
                resource = base.get(name)
                if isinstance(resource, dict) and isinstance(resource.get("external"), dict):
                    flagged = {**resource, "external": True}
                    if "name" in resource["external"]:
                        flagged.setdefault("name", resource["external"]["name"])
                    base[name] = flagged
        return self.generic(base, over, path)

    def to_mapping(self, base: Any, over: Any, path: Path) -> dict:
        return self.merge_mappings(_as_mapping(base, None), _as_mapping(over, None), path)

    def logging(self, base: Any, over: Any, path: Path) -> Any:
        """Options merge only while the driver stays the same (or one side names none)."""
        if not isinstance(base, dict) or not isinstance(over, dict):
            return base if over is None else over
        if "driver" in base and "driver" in over and base["driver"] != over["driver"]:
            return over
        return self.merge_mappings(base, over, path)

    def ipam_config(self, base: Any, over: Any, path: Path) -> list:
        """Compose's mergeIPAMConfig, quirks included: entries pair up by subnet.

        Like Go, each base entry is merged in place with every overlay entry that
        reaches the merge, and an empty base keeps nothing of the overlay.
        """
        if not isinstance(base, list) or not isinstance(over, list):
            dotted = ".".join(map(str, path))
            raise UserError(f"{self.source}: {dotted}: expected a list of ipam configs")
        configs: list[dict] = []
        for original in base:
            right = _as_mapping(original, None)
            for item in over:
                left = _as_mapping(item, None)
                if left.get("subnet") != right.get("subnet") and not any(
                    c.get("subnet") == left.get("subnet") for c in configs
                ):
                    configs.append(left)
                    continue
                merged = self.merge_mappings(right, left, path)
                same = [i for i, c in enumerate(configs) if c.get("subnet") == merged.get("subnet")]
                if same:
                    configs[same[0]] = merged
                else:
                    configs.append(merged)
        return configs


def _pattern(text: str) -> Path:
    return tuple(text.split("."))


_SPECIALS: list[tuple[Path, Callable[..., Any]]] = [
    (_pattern("networks.*.ipam.config"), _Merger.ipam_config),
    (_pattern("networks.*.labels"), _Merger.to_sequence),
    (_pattern("volumes.*.labels"), _Merger.to_sequence),
    *(
        (_pattern(f"services.*.{field}"), _Merger.to_sequence)
        for field in (
            "annotations", "build.args", "build.additional_contexts", "build.labels",
            "deploy.labels", "dns", "dns_opt", "dns_search", "env_file", "label_file",
            "environment", "labels", "sysctls", "tmpfs",
        )  # fmt: skip
    ),
    (_pattern("services.*.build"), _Merger.build),
    (_pattern("services.*.build.extra_hosts"), _Merger.extra_hosts),
    (_pattern("services.*.extra_hosts"), _Merger.extra_hosts),
    (_pattern("services.*.command"), _Merger.replace),
    (_pattern("services.*.entrypoint"), _Merger.replace),
    (_pattern("services.*.healthcheck.test"), _Merger.replace),
    (_pattern("services.*.ulimits.*"), _Merger.replace),
    (_pattern("services.*.depends_on"), _Merger.depends_on),
    (_pattern("services.*.logging"), _Merger.logging),
    (_pattern("services.*.models"), _Merger.to_mapping),
    (_pattern("services.*.networks"), _Merger.to_mapping),
    (_pattern("services.*.gpus"), _Merger.gpus),
    (_pattern("services.*.build.ssh"), _Merger.ssh),
    *((_pattern(kind), _Merger.resources) for kind in ("volumes", "networks", "secrets", "configs")),
]


# --- unicity -----------------------------------------------------------------------

Indexer = Callable[[Any], "str | tuple | None"]


def _text(value: Any) -> str | None:
    """A string entry that is safe to key (no variable), else None."""
    return value if isinstance(value, str) and "$" not in value else None


def _key_value_key(entry: Any) -> str | None:
    text = _text(entry)
    return None if text is None else text.split("=", 1)[0]


def _volume_key(entry: Any) -> str | None:
    """The mount target; Windows-style specs are left to Compose."""
    if isinstance(entry, dict):
        return _text(entry.get("target"))
    text = _text(entry)
    if text is None or "\\" in text or re.match(r"[A-Za-z]:", text):
        return None
    parts = text.split(":")
    return parts[0] if len(parts) == 1 else parts[1] if len(parts) <= 3 else None


def _device_key(entry: Any) -> str | None:
    if isinstance(entry, dict):
        return _text(entry.get("target"))
    text = _text(entry)
    if text is None:
        return None
    parts = text.split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _port_key(entry: Any) -> tuple | None:
    """Short syntax only, and single ports only: ranges expand in Compose's own pass."""
    if isinstance(entry, dict) or (isinstance(entry, str) and "$" in entry):
        return None
    try:
        parsed = parse_port(entry)
    except ValueError:
        return None
    if parsed is None or parsed[2] != parsed[3] or "-" in parsed[1]:
        return None
    ip, published, target, _, proto = parsed
    return ip, published, target, proto


def _expose_key(entry: Any) -> str | None:
    if isinstance(entry, int) and not isinstance(entry, bool):
        return str(entry)
    return _text(entry)


def _mount_key(default_dir: str) -> Indexer:
    def key(entry: Any) -> str | None:
        if isinstance(entry, dict):
            if "target" in entry:
                return _text(entry["target"])
            source = _text(entry.get("source"))
            return None if source is None else f"{default_dir}/{source}"
        text = _text(entry)
        return None if text is None else f"{default_dir}/{text}"

    return key


def _env_file_key(entry: Any) -> str | None:
    return _text(entry.get("path")) if isinstance(entry, dict) else _text(entry)


_UNIQUE: list[tuple[Path, Indexer]] = [
    (_pattern("networks.*.labels"), _key_value_key),
    *(
        (_pattern(f"services.*.{field}"), _key_value_key)
        for field in (
            "annotations", "build.args", "build.additional_contexts", "build.tags",
            "build.labels", "cap_add", "cap_drop", "deploy.labels", "dns", "dns_opt",
            "dns_search", "environment", "labels", "links", "networks.*.aliases",
            "networks.*.link_local_ips", "profiles", "sysctls", "tmpfs",
        )  # fmt: skip
    ),
    (_pattern("services.*.configs"), _mount_key("")),
    (_pattern("services.*.secrets"), _mount_key("/run/secrets")),
    (_pattern("services.*.env_file"), _env_file_key),
    (_pattern("services.*.expose"), _expose_key),
    (_pattern("services.*.ports"), _port_key),
    (_pattern("services.*.volumes"), _volume_key),
    (_pattern("services.*.devices"), _device_key),
]


def _by_last_key(rules: list) -> tuple[dict, list]:
    """Rules indexed by the last key of their pattern, so a path is matched against its own few;
    those ending in `*` (as `services.*.ulimits.*`) may match any path, so they come with every key."""
    wildcard = [rule for rule in rules if rule[0][-1] == "*"]
    index: dict = {}
    for rule in rules:
        if rule[0][-1] != "*":
            index.setdefault(rule[0][-1], list(wildcard)).append(rule)
    return index, wildcard


def _rules_for(indexed: tuple[dict, list], path: Path) -> list:
    index, wildcard = indexed
    return index.get(path[-1], wildcard) if path else []


_SPECIALS_BY_LAST = _by_last_key(_SPECIALS)
_UNIQUE_BY_LAST = _by_last_key(_UNIQUE)


def _enforce_unicity(value: Any, path: Path) -> None:
    """Compose's EnforceUnicity, in place: a later entry with the same key replaces the first.

    Only lists whose every entry has a key are touched: one unkeyable entry
    (a variable) could stand between two equal ones and change which wins, so
    such a list is left whole for Compose to de-duplicate after interpolation.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, list):
                value[key] = _unique(item, (*path, key))
            _enforce_unicity(value[key], (*path, key))


def _unique(items: list, path: Path) -> list:
    indexer = next((ix for pattern, ix in _rules_for(_UNIQUE_BY_LAST, path) if _matches(path, pattern)), None)
    if indexer is None:
        return items
    keys = [indexer(item) for item in items]
    if any(key is None for key in keys):
        return items
    result: list = []
    position: dict = {}
    for key, item in zip(keys, items, strict=True):
        if key in position:
            result[position[key]] = item
        else:
            position[key] = len(result)
            result.append(item)
    return result
