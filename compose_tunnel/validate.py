"""Compose validation before anything is written: each input file against the Compose
Specification's JSON schema, and the merged project with the checks Compose makes on a project.

The schema is the copy check-jsonschema maintains (read as a data file; that package is never
imported), checked with jsonschema-rs (fast, compiled) and, to explain a failure, jsonschema;
both imported only when a file is validated: the built-in
profiles are validated by the tests, so `generate` of a stack made of them alone pays nothing.
An error names the file, line and column, the YAML path and what is wrong, in one line; an
unknown key gets the nearest known one ("did you mean").
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import re
from pathlib import Path
from typing import Any, Iterable

from .errors import UserError

SCHEMA_PACKAGE = "check_jsonschema"
SCHEMA_HINT = "the Compose file reference lists the keys and types each place takes"
SCHEMA_FILE = Path("builtin_schemas/vendor/compose-spec.json")


def _schema_path() -> Path:
    spec = importlib.util.find_spec(SCHEMA_PACKAGE)  # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the Compose schema is missing (package check-jsonschema)",
                        hint="reinstall compose-tunnel with its dependencies")
    return Path(list(spec.submodule_search_locations)[0]) / SCHEMA_FILE


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(_schema_path().read_text(encoding="utf-8"))


def schema_version() -> str:
    """Where the schema comes from and its digest, for --version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = f"check-jsonschema {version('check-jsonschema')}"
    except PackageNotFoundError:
        package = "check-jsonschema (not installed)"
    try:
        digest = hashlib.sha256(_schema_path().read_bytes()).hexdigest()[:12]
    except (OSError, UserError):
        digest = "missing"
    return f"Compose Specification schema from {package}, sha256 {digest}"


# Where the real Compose (compose-go's copy of the schema) accepts what this copy refuses, as
# the merge corpus shows: list_of_strings items may repeat (network aliases; the merge folds
# them), and a model in an overlay may omit `model` (the merged project has it).
PER_FILE_RELAXED = (("list_of_strings", "uniqueItems"), ("model", "required"))
# The merged project: duplicates are folded by the merge itself, as Compose does.
MERGED_RELAXED = (("*", "uniqueItems"),)


@functools.lru_cache(maxsize=2)
def _validator(relaxed: tuple[tuple[str, str], ...]):
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_relax(schema(), relaxed))


def _relax(full: dict, relaxed: tuple[tuple[str, str], ...]) -> dict:
    """A copy of the schema without the (definition, keyword) pairs; "*" is every definition."""
    everywhere = {keyword for name, keyword in relaxed if name == "*"}
    copy = _drop_keywords(full, everywhere) if everywhere else json.loads(json.dumps(full))
    for name, keyword in relaxed:
        if name != "*":
            copy["$defs"][name].pop(keyword, None)
    return copy


def _drop_keywords(node: Any, keywords: set[str]) -> Any:
    if isinstance(node, list):
        return [_drop_keywords(item, keywords) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):  # property names, not keywords
            out[key] = {name: _drop_keywords(sub, keywords) for name, sub in value.items()}
        elif key in keywords and isinstance(value, (list, bool)):
            continue
        else:
            out[key] = _drop_keywords(value, keywords)
    return out


# --- one file against the schema ----------------------------------------------------------

def check_file(doc: dict, text: str, source: str) -> None:
    """UserError for the first schema violation of a loaded compose file (tags already off).

    Keys set to null are left out first: in an overlay they unset what an earlier file set,
    and Compose accepts them whatever their type."""
    error = _first_error(doc, PER_FILE_RELAXED)
    if error is not None:
        _raise(error, text, source)


def check_merged(merged: dict, files: list[tuple[str, str, dict]]) -> None:
    """The merged project against the whole schema; the error points into the last input
    file (source, text, document) that sets the failing path."""
    error = _first_error(merged, MERGED_RELAXED)
    if error is None:
        return
    path = list(error.absolute_path)
    for source, text, doc in reversed(files):
        if _has_path(doc, path[:2]):
            _raise(error, text, source)
    source, text, _ = files[-1]
    _raise(error, text, source)


def _has_path(doc: Any, path: list) -> bool:
    from .merge import plain

    doc = plain(doc)
    for part in path:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and isinstance(part, int) and part < len(doc):
            doc = doc[part]
        else:
            return False
    return True


@functools.lru_cache(maxsize=2)
def _fast_validator(relaxed: tuple[tuple[str, str], ...]):
    """jsonschema-rs, compiled from the same schema: whether a document is valid (the common
    case) is known in milliseconds; what is wrong with an invalid one, jsonschema says."""
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - a dependency; jsonschema alone still works
        return None
    return jsonschema_rs.Draft202012Validator(_relax(schema(), relaxed))


def _first_error(doc: dict, relaxed: tuple[tuple[str, str], ...]):
    doc = _without_nulls(doc)
    fast = _fast_validator(relaxed)
    try:
        if fast is not None and fast.is_valid(doc):
            return None
    except Exception:  # noqa: BLE001 - a value it cannot take (a YAML timestamp): jsonschema decides
        pass
    from jsonschema.exceptions import best_match

    errors = [e for e in _validator(relaxed).iter_errors(doc) if not _spurious(e)]
    return best_match(errors)


def _raise(error, text: str, source: str) -> None:
    path, problem = _explain(error)
    line, column = position(text, path)
    where = _dotted(error.absolute_path) or "the top level"
    raise UserError(f"{source}:{line}:{column}: {where} {problem}", hint=SCHEMA_HINT)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _known_keys(node: Any, depth: int = 0) -> tuple[set[str], list[str]]:
    """Property names and name patterns a schema node allows, through $ref and allOf/anyOf/oneOf."""
    names, patterns = set(), []
    if not isinstance(node, dict) or depth > 8:
        return names, patterns
    names |= set(node.get("properties", {}))
    patterns += list(node.get("patternProperties", {}))
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        more = _known_keys(schema()["$defs"].get(ref[8:]), depth + 1)
        names |= more[0]
        patterns += more[1]
    for combinator in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(combinator, []):
            more = _known_keys(sub, depth + 1)
            names |= more[0]
            patterns += more[1]
    return names, patterns


def _unknown_keys(error) -> tuple[list[str], set[str]]:
    allowed, patterns = _known_keys(error.schema)
    extra = [key for key in (error.instance if isinstance(error.instance, dict) else {})
             if key not in allowed and not any(re.search(p, key) for p in patterns)]
    return sorted(extra), allowed


def _spurious(error) -> bool:
    """An unevaluatedProperties error whose keys are all known: it only echoes another error."""
    return error.validator == "unevaluatedProperties" and not _unknown_keys(error)[0]


def _explain(error) -> tuple[list, str]:
    """(path to point at, what is wrong) for a jsonschema error, in Compose's terms."""
    path = list(error.absolute_path)
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        extra, allowed = _unknown_keys(error)
        if extra:
            import difflib

            key = extra[0]
            guess = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
            hint = f" (did you mean '{guess[0]}'?)" if guess else ""
            return [*path, key], f"additional properties '{key}' not allowed{hint}"
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in (error.instance or {})] or ["?"]
        return path, f"has no '{missing[0]}': {_dotted([*path, missing[0]])} is required"
    if error.validator == "uniqueItems":
        seen: dict[str, int] = {}
        for index, item in enumerate(error.instance):
            key = json.dumps(item, sort_keys=True, default=str)
            if key in seen:
                return [*path, index], f"items at {seen[key]} and {index} are equal"
            seen[key] = index
    if error.validator == "type":
        expected = error.validator_value
        names = [TYPE_NAMES.get(kind, kind) for kind in (expected if isinstance(expected, list) else [expected])]
        return path, f"must be {' or '.join(map(_article, names))}, not {_kind(error.instance)} {_short(error.instance)}"
    return path, error.message


TYPE_NAMES = {"object": "mapping", "array": "list", "integer": "number"}


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _kind(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "number",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _dotted(path: Iterable) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def position(text: str, path: list) -> tuple[int, int]:
    """1-based line and column of the node at `path` in a YAML text (keys of mappings point at
    the key); the deepest existing ancestor when the path goes further than the text."""
    from yaml.nodes import MappingNode, SequenceNode

    from .yamlio import compose_node

    node = compose_node(text)
    mark = node.start_mark if node is not None else None
    for part in path:
        if isinstance(node, MappingNode):
            found = _mapping_entry(node, part)
            if found is None:
                break
            key, value = found
            mark, node = key.start_mark, value
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            mark = node.start_mark
        else:
            break
    if mark is None:
        return 1, 1
    return mark.line + 1, mark.column + 1


def _mapping_entry(node, key):
    """The (key node, value node) for `key`, looking through `<<` merge keys as YAML does."""
    from yaml.nodes import MappingNode, SequenceNode

    merged = []
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            merged.extend(s for s in sources if isinstance(s, MappingNode))
        elif getattr(key_node, "value", None) == key:
            return key_node, value_node
    for source in merged:
        found = _mapping_entry(source, key)
        if found is not None:
            return found
    return None


# --- the merged project: what Compose checks on a project ---------------------------------

class ProjectError(UserError):
    """A project-level refusal, with the path in the merged project it is about."""

    def __init__(self, path: list, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.path = path


def check_project(doc: dict, files: list[tuple[str, str, dict]]) -> None:
    """UserError for references Compose refuses in a merged project, in Compose's words,
    located in the last input file (source, text, document) that sets what is refused."""
    try:
        _check_references(doc)
    except ProjectError as error:
        located = f"{' + '.join(Path(source).name for source, _, _ in files)}: "
        for source, text, part in reversed(files):
            if _has_path(part, error.path):
                line, column = position(text, error.path)
                located = f"{source}:{line}:{column}: "
                break
        raise UserError(located + error.message, error.hint) from None


def _check_references(doc: dict) -> None:
    """ProjectError for the first reference Compose refuses (`include` is resolved by now)."""
    services = doc.get("services") or {}
    resources = {kind: set((doc.get(kind) or {})) for kind in ("networks", "volumes", "secrets", "configs")}
    for kind in ("networks", "volumes", "secrets", "configs"):
        for name, definition in (doc.get(kind) or {}).items():
            _check_external(kind, name, definition)
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        at = ["services", name]
        for other in _depends_on(service):
            if other not in services:
                raise ProjectError([*at, "depends_on"],
                                   f'service "{name}" depends on undefined service "{other}"',
                                   hint="define it, or remove it from depends_on")
        for link in service.get("links") or []:
            other = str(link).split(":")[0]
            if other not in services:
                raise ProjectError([*at, "links"], f'service "{name}" links to undefined service "{other}"',
                                   hint="define it, or remove the link")
        mode = service.get("network_mode")
        if isinstance(mode, str) and mode.startswith("service:") and mode[8:] not in services:
            raise ProjectError([*at, "network_mode"],
                               f'service "{name}" uses the network of undefined service "{mode[8:]}"',
                               hint="define it, or change network_mode")
        if mode is not None and service.get("networks"):
            raise ProjectError([*at, "networks"], f"service {name} declares mutually exclusive "
                               "`network_mode` and `networks`", hint="keep one of them")
        for entry in service.get("volumes_from") or []:
            text = str(entry)
            if not text.startswith("container:"):
                other = text.removeprefix("service:").split(":")[0]
                if other not in services:
                    raise ProjectError([*at, "volumes_from"],
                                       f'service "{name}" takes volumes from undefined service "{other}"',
                                       hint="define it, or remove it from volumes_from")
        for network in _names(service.get("networks")):
            if network != "default" and network not in resources["networks"]:
                raise ProjectError([*at, "networks"], f'service "{name}" refers to undefined network {network}',
                                   hint="declare it under the top-level networks")
        for volume in service.get("volumes") or []:
            named = _named_volume(volume)
            if named and named not in resources["volumes"]:
                raise ProjectError([*at, "volumes"], f'service "{name}" refers to undefined volume {named}',
                                   hint="declare it under the top-level volumes")
        for kind in ("secrets", "configs"):
            for entry in service.get(kind) or []:
                ref = entry.get("source") if isinstance(entry, dict) else entry
                if ref is not None and str(ref) not in resources[kind]:
                    raise ProjectError([*at, kind], f'service "{name}" refers to undefined {kind[:-1]} {ref}',
                                       hint=f"declare it under the top-level {kind}")


def _depends_on(service: dict) -> list[str]:
    return [str(name) for name in _names(service.get("depends_on"))]


def _names(value: Any) -> list:
    if isinstance(value, dict):
        return list(value)
    if isinstance(value, list):
        return [v for v in value if isinstance(v, (str, int))]
    return []


def _named_volume(entry: Any) -> str | None:
    """The named volume a service mount uses, if it is one (not a bind mount or tmpfs)."""
    if isinstance(entry, dict):
        if entry.get("type", "volume") != "volume":
            return None
        source = entry.get("source")
    else:
        parts = str(entry).split(":")
        if len(parts) < 2:
            return None  # an anonymous volume
        source = parts[0]
    if not source or "$" in str(source):
        return None
    source = str(source)
    if source.startswith((".", "/", "~")) or "\\" in source:
        return None
    return source


def _check_external(kind: str, name: str, definition: Any) -> None:
    if kind not in ("networks", "volumes") or not isinstance(definition, dict) or not definition.get("external"):
        return
    for key in ("driver", "driver_opts"):
        if key in definition:
            raise ProjectError([kind, name, key], f"{kind}.{name}: conflicting parameters \"external\" "
                               f"and \"{key}\" specified", hint=f"an external {kind[:-1]} is made elsewhere")


