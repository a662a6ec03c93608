"""The Compose schema as Compose 2.40 applies it, and its refusals in Compose's words.

The schema is the copy check-jsonschema maintains (read as a data file; that package is never
imported). It runs ahead of Compose: `DIALECT` takes back what Compose 2.40 (compose-go v2.9)
does not know yet or reads otherwise, so that a project is valid here exactly when it is valid
there. jsonschema-rs (compiled) says whether a model is valid; jsonschema, only for an invalid
one, finds the error Compose reports: the most specific one (the deepest; an unknown key counts
one deeper), worded as compose-go words it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import json
import re
from pathlib import Path
from typing import Any, Iterator

from .model import unknown
from .errors import UserError

SCHEMA_PACKAGE = "check_jsonschema"
SCHEMA_FILE = Path("builtin_schemas/vendor/compose-spec.json")
COMPOSE_VERSION = "2.40"


def _schema_path() -> Path:
    spec = importlib.util.find_spec(SCHEMA_PACKAGE)  # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the Compose schema is missing (package check-jsonschema)",
                        hint="reinstall compose-tunnel with its dependencies")
    return Path(list(spec.submodule_search_locations)[0]) / SCHEMA_FILE


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    """The Compose Specification's schema as check-jsonschema ships it."""
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
    return f"Compose Specification schema from {package}, sha256 {digest}, as Compose {COMPOSE_VERSION} reads it"


# --- the dialect of Compose 2.40 --------------------------------------------------------------

# Keys the specification gained after compose-go v2.9 (Compose 2.40 refuses them as unknown).
NEWER_KEYS = {
    "": ("jobs",),
    "service": ("umask", "pre_start"),
    "build": ("no_cache_filter",),
    "service_network": ("use_service_name_alias",),
}
# Sizes compose-go v2.9 takes as any number (`mem_limit: 1.5`), the specification only as integers.
ANY_NUMBER = ("mem_limit", "memswap_limit", "shm_size")


@functools.lru_cache(maxsize=1)
def compose_schema() -> dict:
    """The schema as Compose 2.40 validates with it (see NEWER_KEYS and ANY_NUMBER)."""
    full = copy.deepcopy(schema())
    defs = full["$defs"]
    for key in NEWER_KEYS[""]:
        full["properties"].pop(key, None)
    for key in ("networks", "models"):  # compose-go names no rule for the other names
        full["properties"].get(key, {}).pop("additionalProperties", None)
    service = _flattened(defs, defs["service"])
    for key in NEWER_KEYS["service"]:
        service["properties"].pop(key, None)
    for key in ANY_NUMBER:
        if key in service["properties"]:
            service["properties"][key]["type"] = ["number", "string"]
    policy = service["properties"].get("pull_policy", {})
    if "pattern" in policy:  # compose-go's pattern is not anchored: it searches
        policy["pattern"] = re.sub(r"^\^\((.*)\)\$$", r"\1", policy["pattern"])
    for variant in service["properties"].get("build", {}).get("oneOf", []):
        for key in NEWER_KEYS["build"]:
            variant.get("properties", {}).pop(key, None)
    for variant in service["properties"].get("networks", {}).get("oneOf", []):
        for network in variant.get("patternProperties", {}).values():
            for option in network.get("oneOf", []):
                for key in NEWER_KEYS["service_network"]:
                    option.get("properties", {}).pop(key, None)
    defs["service"] = service
    return full


def _flattened(defs: dict, node: dict) -> dict:
    """A definition made of `allOf` parts and `unevaluatedProperties: false` as one object with
    `additionalProperties: false`, as compose-go's schema writes a service."""
    flat = {key: value for key, value in node.items() if key not in ("allOf", "unevaluatedProperties")}
    flat.setdefault("type", "object")
    properties: dict = {}
    patterns: dict = {}
    for part in node.get("allOf", []):
        ref = part.get("$ref", "")
        part = defs[ref.rsplit("/", 1)[-1]] if ref.startswith("#/$defs/") else part
        properties.update(part.get("properties", {}))
        patterns.update(part.get("patternProperties", {}))
    properties.update(node.get("properties", {}))
    flat["properties"] = properties
    flat["patternProperties"] = {**patterns, **node.get("patternProperties", {})}
    if node.get("unevaluatedProperties") is False:
        flat["additionalProperties"] = False
    return flat


@functools.lru_cache(maxsize=1)
def _fast_validator():
    """jsonschema-rs: whether a model is valid (the common case) in milliseconds."""
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - a dependency; jsonschema alone still works
        return None
    return jsonschema_rs.Draft202012Validator(compose_schema())


@functools.lru_cache(maxsize=1)
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(compose_schema())


# --- Compose's error -------------------------------------------------------------------------------

class SchemaError:
    """The error Compose reports for a model: where (a path in the model) and what, in its words."""

    def __init__(self, path: list, message: str, validator: str, instance: Any, extra: str = "") -> None:
        self.path = path
        self.message = message.strip()  # compose-go's `PATH MESSAGE`; at the top level, the message
        self.validator = validator
        self.instance = instance
        self.extra = extra  # ours: the did-you-mean


def first_error(model: dict) -> SchemaError | None:
    """Compose's refusal of a model, or None. Values holding a variable are taken as valid:
    what they are is known when `docker compose` runs."""
    fast = _fast_validator()
    try:
        if fast is not None and fast.is_valid(model):
            return None
    except Exception:  # noqa: BLE001 - a value it cannot take (a YAML timestamp): jsonschema decides
        pass
    candidates = []
    for error in _validator().iter_errors(model):
        if any(unknown(e.instance) for e in _tree(error)):
            continue
        candidates.extend(_leaves(error))
    return _worded(_most_specific(candidates)) if candidates else None


def _tree(error) -> Iterator:
    yield error
    for sub in error.context or ():
        yield from _tree(sub)


def _leaves(error) -> list:
    if error.context and error.validator in ("oneOf", "anyOf", "allOf"):
        return [leaf for sub in error.context for leaf in _leaves(sub)]
    return [error]


_RANK = {"type": 0, "const": 1, "enum": 1}  # the order compose-go's validator checks keywords in


def _most_specific(errors: list):
    """compose-go's getMostSpecificError: the deepest error; an unknown key one deeper."""
    def depth(error) -> int:
        return len(error.absolute_path) + (1 if error.validator in ("additionalProperties",
                                                                    "unevaluatedProperties") else 0)

    return min(errors, key=lambda e: (-depth(e), _RANK.get(e.validator, 2)))


def _joined(path: list) -> str:
    return ".".join(str(part) for part in path)



def _worded(error) -> SchemaError:
    path = list(error.absolute_path)
    where = _joined(path)
    kind = error.validator
    if hasattr(error.instance, "isoformat") and not isinstance(error.instance, str):
        # go-yaml decodes a YAML timestamp to time.Time, which no JSON type takes
        return SchemaError(path, f"{where} invalid jsonType time.Time", kind, error.instance)
    if kind in ("additionalProperties", "unevaluatedProperties"):
        extra, allowed = _unknown_keys(error)
        extra = extra or ["?"]
        guess = _did_you_mean(extra[0], allowed)
        return SchemaError([*path, extra[0]], f"{where} additional properties {_quoted(extra)} not allowed",
                           kind, error.instance, guess)
    if kind == "type":
        want = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return SchemaError(path, f"{where} must be a {_human_type(want)}", kind, error.instance)
    if kind == "required":
        missing = [k for k in error.validator_value if k not in (error.instance or {})] or ["?"]
        noun = "property" if len(missing) == 1 else "properties"
        return SchemaError(path, f"{where} missing {noun} {_quoted(missing)}", kind, error.instance)
    if kind in ("minimum", "maximum"):
        bound = "greater" if kind == "minimum" else "less"
        return SchemaError(path, f"{where} must be {bound} than or equal to {_number(error.validator_value)}",
                           kind, error.instance)
    if kind == "uniqueItems":
        first, second = duplicates(error.instance)
        return SchemaError(path, f"{where} items at {first} and {second} are equal", kind, error.instance)
    if kind == "enum":
        values = error.validator_value
        if all(not isinstance(v, (list, dict)) for v in values):
            shown = ", ".join(_display(v) for v in values)
            text = f"value must be {shown}" if len(values) == 1 else f"value must be one of {shown}"
        else:
            text = "enum failed"
        return SchemaError(path, f"{where} {text}", kind, error.instance)
    if kind == "const":
        text = ("const failed" if isinstance(error.validator_value, (list, dict))
                else f"value must be {_display(error.validator_value)}")
        return SchemaError(path, f"{where} {text}", kind, error.instance)
    if kind == "pattern":
        return SchemaError(path, f"{where} {_quote(str(error.instance))} does not match pattern "
                                 f"{_quote(error.validator_value)}", kind, error.instance)
    if kind == "oneOf":
        return SchemaError(path, f"{where} oneOf failed, subschemas 0, 1 matched", kind, error.instance)
    if kind in ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"):
        size = len(error.instance)
        return SchemaError(path, f"{where} {kind}: got {size}, want {error.validator_value}", kind, error.instance)
    if kind == "not":
        return SchemaError(path, f"{where} not failed", kind, error.instance)
    return SchemaError(path, f"{where} {error.message}", kind, error.instance)


def _human_type(want: list) -> str:
    names = sorted("mapping" if kind == "object" else kind for kind in want)
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} or {names[-1]}"


def _quote(text: str) -> str:
    body = json.dumps(text, ensure_ascii=False)[1:-1].replace('\\"', '"').replace("'", "\\'")
    return f"'{body}'"


def _quoted(names: list) -> str:
    return ", ".join(_quote(name) for name in names)


def _display(value: Any) -> str:
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "<nil>" if value is None else str(value)


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def duplicates(items: list) -> tuple[int, int]:
    """The first repeated item (jsonschema's order: the second occurrence's index decides)."""
    for second in range(1, len(items)):
        for first in range(second):
            if _json_equal(items[first], items[second]):
                return first, second
    return 0, 1


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    return a == b


# --- unknown keys: which, and the nearest known one ---------------------------------------------

def _known_keys(node: Any, depth: int = 0) -> tuple[set[str], list[str]]:
    """Property names and name patterns a schema node allows, through $ref and allOf/anyOf/oneOf."""
    names, patterns = set(), []
    if not isinstance(node, dict) or depth > 8:
        return names, patterns
    names |= set(node.get("properties", {}))
    patterns += list(node.get("patternProperties", {}))
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        more = _known_keys(compose_schema()["$defs"].get(ref[8:]), depth + 1)
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


def _did_you_mean(key: str, allowed: set[str]) -> str:
    import difflib

    guess = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
    return f"did you mean '{guess[0]}'?" if guess else ""
