"""Compose's model of a project, as the modules that build and check it share it: the error
its loader raises, the paths it names values by, and how Go prints what it holds.

A string holding a variable cannot be known before `docker compose` runs: whatever depends on
its value is decided then (`unknown`).
"""

from __future__ import annotations

import re
from typing import Any

Path = tuple  # of mapping keys (str) and sequence indexes (int)

PORT_HINT = 'e.g. "8080:80", "127.0.0.1:8080:80/tcp" or "9000-9010:9000-9010/udp"'
_VARIABLE = re.compile(r"\$(?:\{|[A-Za-z_])")


class ModelError(Exception):
    """A refusal of Compose's loader, in its words, with the path of the value it is about."""

    def __init__(self, path: Path, message: str, hint: str | None = None, also: list[Path] | None = None) -> None:
        super().__init__(message)
        self.path = tuple(path)
        self.message = message
        self.hint = hint
        self.also = also or []  # the other values it is about


def unknown(value: Any) -> bool:
    """A string whose value depends on a variable (`$$` is a literal `$`)."""
    return isinstance(value, str) and "$" in value and _VARIABLE.search(value.replace("$$", "")) is not None


def dotted(path: Path) -> str:
    """A path as compose-go's tree.Path prints it (`services.web.ports.[0]` for an index)."""
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path)


def go_type(value: Any) -> str:
    """Go's `%T` of a value as go-yaml decodes it."""
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "float64", str: "string", type(None): "<nil>", dict: "map[string]interface {}",
            list: "[]interface {}"}.get(type(value), "time.Time")


def matches(path: Path, pattern: Path) -> bool:
    """compose-go's tree.Path.Matches: `*` is any one part, `[]` any sequence index."""
    return len(path) == len(pattern) and all(
        p == "*" or p == k or (p == "[]" and isinstance(k, int)) for k, p in zip(path, pattern))


def by_last(rules: dict) -> tuple[dict, list]:
    """Rules indexed by their pattern's last part, so a path is matched against its own few."""
    index: dict = {}
    wildcard = [(pattern, rule) for pattern, rule in rules.items() if pattern[-1] in ("*", "[]")]
    for pattern, rule in rules.items():
        if pattern[-1] not in ("*", "[]"):
            index.setdefault(pattern[-1], []).append((pattern, rule))
    return index, wildcard


def rule(indexed: tuple[dict, list], path: Path) -> Any:
    index, wildcard = indexed
    candidates = index.get(path[-1], []) if path and isinstance(path[-1], str) else []
    return next((rule for pattern, rule in [*candidates, *wildcard] if matches(path, pattern)), None)


def go_value(value: Any) -> str:
    """Go's `%s`/`%v` of a decoded YAML value, enough to build the same keys and messages."""
    if isinstance(value, str):
        return value
    if value is None:
        return "%!s(<nil>)"
    if isinstance(value, bool):
        return f"%!s(bool={'true' if value else 'false'})"
    if isinstance(value, int):
        return f"%!s(int={value})"
    if isinstance(value, float):
        return f"%!s(float64={value!r})"
    return repr(value)
