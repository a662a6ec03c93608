"""Variables an included project takes from its own env file, kept as defaults in the flat file.

Compose interpolates an included project with the including project's variables, falling back
to the include's `env_file` (or the `.env` of its project directory) for those it lacks. The
merged file is not interpolated, so a reference to a variable that the include's env file
defines is rewritten to carry that value as its default: `${DB_TAG}` becomes
`${DB_TAG-15}`, which Compose later reads exactly as it would have read the include. Bare
`environment` entries (`- DB_TAG`) get the value the same way. Values are taken literally
(quotes removed): references inside an env file's values are not followed.

One case cannot be written so: a variable the including project sets *empty* while the include's
env file gives it a value is read with `:-`/`:?`/`:+` as if it were unset.
"""

from __future__ import annotations

import re
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


def bind(value: Any, env: dict[str, str]) -> Any:
    """Every string of a loaded document with the variables of `env` bound as defaults."""
    if not env:
        return value
    if isinstance(value, str):
        return bind_text(value, env)
    if isinstance(value, dict):
        return {key: bind(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [bind(item, env) for item in value]
    return value


def bind_environment(service: dict, env: dict[str, str]) -> None:
    """`- NAME` / `NAME:` (a value taken from the environment) given `env`'s value as default."""
    environment = service.get("environment")
    if isinstance(environment, list):
        service["environment"] = [
            f"{entry}={_substitute(entry, '', None, env)}"
            if isinstance(entry, str) and entry in env and _bindable(env[entry]) else entry
            for entry in environment
        ]
    elif isinstance(environment, dict):
        for key, item in environment.items():
            if item is None and key in env and _bindable(env[key]):
                environment[key] = _substitute(key, "", None, env)


def bind_text(text: str, env: dict[str, str]) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char != "$" or index + 1 >= len(text):
            out.append(char)
            index += 1
            continue
        following = text[index + 1]
        if following == "$":
            out.append("$$")
            index += 2
        elif following == "{":
            end = _closing_brace(text, index + 2)
            if end is None:  # unterminated: Compose refuses it; leave it for Compose to say so
                out.append(text[index:])
                break
            out.append(_braced(text[index + 2:end], env))
            index = end + 1
        elif match := _NAME.match(text, index + 1):
            out.append(_substitute(match.group(), "", None, env))
            index = match.end()
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int | None:
    depth, index = 1, start
    while index < len(text):
        if text.startswith("$$", index):
            index += 2
            continue
        if text.startswith("${", index):
            depth += 1
            index += 2
            continue
        if text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return None


def _braced(inner: str, env: dict[str, str]) -> str:
    match = _NAME.match(inner)
    if not match:
        return "${" + inner + "}"
    name, rest = match.group(), inner[match.end():]
    if not rest:
        return _substitute(name, "", None, env)
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        return "${" + inner + "}"
    return _substitute(name, operator, bind_text(rest[len(operator):], env), env)


def _substitute(name: str, operator: str, argument: str | None, env: dict[str, str]) -> str:
    written = "${" + name + operator + (argument or "") + "}"
    if name not in env or not _bindable(env[name]):
        return written
    value = env[name]
    if operator in ("", "-", "?"):
        return f"${{{name}-{_escape(value)}}}"
    if operator in (":-", ":?"):
        return f"${{{name}:-{_escape(value)}}}" if value else written
    if operator == "+":
        return argument or ""
    return (argument or "") if value else written  # ":+"


def _bindable(value: str) -> bool:
    """A default cannot hold a closing brace: such a value is left to the including project."""
    return "}" not in value


def _escape(value: str) -> str:
    return value.replace("$", "$$")
