"""Env files that both compose-tunnel and the user edit.

The tool owns a known set of keys: it sets them, or removes them when they no longer apply.
Every other line (the user's keys, comments, blank lines) is kept as it is, in place. Values are
written for Compose, which interpolates env files: `$` is escaped as `$$`.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

KEY_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=")
MANAGED_HEADER = "# --- set by compose-tunnel: edits to these keys are overwritten; add your own anywhere ---"


def encode_value(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("env values cannot span lines")
    escaped = value.replace("$", "$$")
    if re.search(r"[\s#'\"\\]", escaped):
        return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return escaped


def values(text: str | None) -> dict[str, str]:
    """KEY -> value of the lines of an env file (quotes removed, `$$` read as `$`)."""
    found: dict[str, str] = {}
    for line in (text or "").splitlines():
        match = KEY_LINE.match(line)
        if not match:
            continue
        raw = line[match.end():].strip()
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            raw = raw[1:-1]
            if line[match.end():].strip()[0] == '"':
                raw = raw.replace('\\"', '"').replace("\\\\", "\\")
        found[match.group(1)] = raw.replace("$$", "$")
    return found


def update(existing: str | None, values: Mapping[str, str], owned: Iterable[str]) -> str:
    """Return `existing` with `values` set and the other `owned` keys removed."""
    owned = set(owned) | set(values)
    pending = dict(values)
    lines: list[str] = []
    for line in (existing or "").splitlines():
        match = KEY_LINE.match(line)
        key = match.group(1) if match else None
        if key in owned:
            if key in pending:
                lines.append(f"{key}={encode_value(pending.pop(key))}")
            continue
        lines.append(line)
    if pending:
        if MANAGED_HEADER not in lines:
            if lines and lines[-1].strip():
                lines.append("")
            lines.append(MANAGED_HEADER)
        lines.extend(f"{key}={encode_value(value)}" for key, value in pending.items())
    return "\n".join(lines) + "\n"

