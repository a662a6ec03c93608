"""The rules of Compose's merge (compose-go v2, package `override`): how one value of an
overlay folds into what the earlier files made, field by field, and how a merged list is then
de-duplicated by the key Compose uses for that field (EnforceUnicity).

Module `merge` reads the files and resolves `extends`/`include`; it hands each pair of
documents to `Merger`. The de-duplication here runs on un-interpolated values, so an entry
whose key holds a variable leaves its list whole; `unicity` is the stricter pass on the
interpolated model that validation uses.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from typing import Any

from .errors import UserError
from .ports import parse_port

Path = tuple  # of mapping keys (str) and sequence indexes (int)


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


DEPENDS_ON_DEFAULT = {"condition": "service_started", "required": True}


def as_mapping(value: Any, default: dict | None) -> dict:
    """Compose's convertIntoMapping: list entries become keys with `default` values."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(item): copy.deepcopy(default) for item in value}
    return {}


class Merger:
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
            return {"context": value} if isinstance(value, str) else as_mapping(value, None)

        return self.merge_mappings(as_build(base), as_build(over), path)

    def depends_on(self, base: Any, over: Any, path: Path) -> dict:
        """A short-form entry merges as `condition: service_started, required: true`."""
        base, over = as_mapping(base, DEPENDS_ON_DEFAULT), as_mapping(over, DEPENDS_ON_DEFAULT)
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
        return self.merge_mappings(as_mapping(base, None), as_mapping(over, None), path)

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
            right = as_mapping(original, None)
            for item in over:
                left = as_mapping(item, None)
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
    (_pattern("networks.*.ipam.config"), Merger.ipam_config),
    (_pattern("networks.*.labels"), Merger.to_sequence),
    (_pattern("volumes.*.labels"), Merger.to_sequence),
    *(
        (_pattern(f"services.*.{field}"), Merger.to_sequence)
        for field in (
            "annotations", "build.args", "build.additional_contexts", "build.labels",
            "deploy.labels", "dns", "dns_opt", "dns_search", "env_file", "label_file",
            "environment", "labels", "sysctls", "tmpfs",
        )  # fmt: skip
    ),
    (_pattern("services.*.build"), Merger.build),
    (_pattern("services.*.build.extra_hosts"), Merger.extra_hosts),
    (_pattern("services.*.extra_hosts"), Merger.extra_hosts),
    (_pattern("services.*.command"), Merger.replace),
    (_pattern("services.*.entrypoint"), Merger.replace),
    (_pattern("services.*.healthcheck.test"), Merger.replace),
    (_pattern("services.*.ulimits.*"), Merger.replace),
    (_pattern("services.*.depends_on"), Merger.depends_on),
    (_pattern("services.*.logging"), Merger.logging),
    (_pattern("services.*.models"), Merger.to_mapping),
    (_pattern("services.*.networks"), Merger.to_mapping),
    (_pattern("services.*.gpus"), Merger.gpus),
    (_pattern("services.*.build.ssh"), Merger.ssh),
    *((_pattern(kind), Merger.resources) for kind in ("volumes", "networks", "secrets", "configs")),
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


def enforce_unicity(value: Any, path: Path) -> None:
    """Compose's EnforceUnicity, in place: a later entry with the same key replaces the first.

    Only lists whose every entry has a key are touched: one unkeyable entry
    (a variable) could stand between two equal ones and change which wins, so
    such a list is left whole for Compose to de-duplicate after interpolation.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, list):
                value[key] = _unique(item, (*path, key))
            enforce_unicity(value[key], (*path, key))


def _unique(items: list, path: Path) -> list:
    indexer = next((ix for pattern, ix in _rules_for(_UNIQUE_BY_LAST, path) if _matches(path, pattern)), None)
    if indexer is None:
        return items
    keys = [indexer(item) for item in items]
    if any(key is None for key in keys):
        return items
    return later_wins(items, keys)


def later_wins(items: list, keys: list) -> list:
    """Of the items that share a key, the later one takes the place of the first (Compose's
    EnforceUnicity, once each item's key is known)."""
    result: list = []
    position: dict = {}
    for key, item in zip(keys, items, strict=True):
        if key in position:
            result[position[key]] = item
        else:
            position[key] = len(result)
            result.append(item)
    return result
