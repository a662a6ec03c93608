"""Compose's EnforceUnicity: of the entries of a list that share a key (a volume's target, a
variable's name, ...), the later one takes the place of the first. Compose does it after each
merge, before it validates, and again once the long syntax is written out.
"""

from __future__ import annotations

from typing import Any

from .canonical import parse_volume
from .mergerules import later_wins
from .model import ModelError, Path, by_last, dotted, go_type, go_value, rule, unknown


def _key_value(entry: Any, path: Path) -> str:
    if not isinstance(entry, str):
        raise ModelError(path, f"{dotted(path)}: unexpected type {go_type(entry)}")
    return entry.split("=", 1)[0]


def _mount_target(entry: dict, path: Path, kind: str) -> str:
    target = entry.get("target")
    if not isinstance(target, str):
        raise ModelError(path, f"service {kind} {dotted(path)} is missing a mount target")
    return target


def _volume_target(entry: Any, path: Path) -> str:
    if isinstance(entry, dict):
        return _mount_target(entry, path, "volume")
    if isinstance(entry, str):
        if unknown(entry):
            return entry
        return parse_volume(entry, path).get("target", "")
    return ""


def _device_target(entry: Any, path: Path) -> str:
    if isinstance(entry, dict):
        return _mount_target(entry, path, "device")
    if isinstance(entry, str):
        parts = entry.split(":")
        return parts[0] if len(parts) == 1 else parts[1]
    return ""


def _expose(entry: Any, path: Path) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, int) and not isinstance(entry, bool):
        return str(entry)
    raise ModelError(path, f"{dotted(path)}: unsupported expose value {go_value(entry)}")


def _mount(default_dir: str):
    def key(entry: Any, path: Path) -> str:
        if isinstance(entry, str):
            return f"{default_dir}/{entry}"
        if isinstance(entry, dict):
            if "target" in entry:
                return str(entry["target"])
            return f"{default_dir}/{go_value(entry.get('source'))}"
        raise ModelError(path, f"{dotted(path)}: unsupported expose value {go_value(entry)}")

    return key


def _port(entry: Any, path: Path) -> str:
    if isinstance(entry, int) and not isinstance(entry, bool):
        return str(entry)
    if isinstance(entry, dict):
        if "target" not in entry:
            raise ModelError(path, f"service ports {dotted(path)} is missing a target port")
        target = entry["target"]
        shown = str(target) if type(target) is int else go_value(target)
        return (f"{_text(entry.get('host_ip', '0.0.0.0'))}:{_text(entry.get('published'))}:{shown}"
                f"/{_text(entry.get('protocol', 'tcp'))}")
    return entry if isinstance(entry, str) else ""


def _text(value: Any) -> str:
    return value if type(value) is str else go_value(value)


def _env_file(entry: Any, path: Path) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        if "path" not in entry:
            raise ModelError(path, f"environment path attribute {dotted(path)} is missing")
        return go_value(entry["path"])
    return ""


_UNIQUE = {
    **{("services", "*", *key.split(".")): _key_value for key in (
        "annotations", "build.args", "build.additional_contexts", "build.platform", "build.tags",
        "build.labels", "cap_add", "cap_drop", "deploy.labels", "dns", "dns_opt", "dns_search",
        "environment", "labels", "links", "networks.*.aliases", "networks.*.link_local_ips",
        "profiles", "sysctls", "tmpfs")},
    ("networks", "*", "labels"): _key_value,
    ("networks", "*", "ipam", "options"): _key_value,
    ("services", "*", "devices"): _device_target,
    ("services", "*", "configs"): _mount(""),
    ("services", "*", "secrets"): _mount("/run/secrets"),
    ("services", "*", "env_file"): _env_file,
    ("services", "*", "expose"): _expose,
    ("services", "*", "ports"): _port,
    ("services", "*", "volumes"): _volume_target,
}


_UNIQUE_BY_LAST = by_last(_UNIQUE)
# The paths that can lead to such a list: nothing else is walked.
_PREFIXES = {pattern[:length] for pattern in _UNIQUE for length in range(1, len(pattern))}


def _leads_to_a_rule(path: Path) -> bool:
    return any(len(prefix) == len(path) and all(p in ("*", k) for k, p in zip(path, prefix))
               for prefix in _PREFIXES)


def unique(value: Any, path: Path = ()) -> Any:
    """compose-go's EnforceUnicity, in place: of entries with the same key, the later one
    takes the place of the first."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, list) or (isinstance(item, dict) and _leads_to_a_rule((*path, key))):
                value[key] = unique(item, (*path, key))
        return value
    if isinstance(value, list) and path[:1] in (("services",), ("networks",)):
        indexer = rule(_UNIQUE_BY_LAST, path)
        if indexer is None:
            return value
        return later_wins(value, [indexer(entry, (*path, index)) for index, entry in enumerate(value)])
    return value
