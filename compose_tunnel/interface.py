"""Hints in the words of the interface in use: `make` users (the Makefile sets
COMPOSE_TUNNEL_VIA=make) set TUNNELS=, WORKDIR= or ARGS="--flag VALUE", and run make targets, so
a hint naming `compose-tunnel up` or `--tunnels TCP,UDP` is said in make's words for them. The
docker CLI plugin (COMPOSE_TUNNEL_VIA=docker) is run as `docker tunnel up`, with the same flags."""

from __future__ import annotations

import re
from typing import Mapping

MAKE_TARGETS = {"up": "up", "down": "down", "rebuild": "rebuild", "status": "status", "logs": "logs",
                "generate": "generate", "config show": "config", "doctor": "doctor",
                "service install": "service", "backup": "backup", "upgrade": "upgrade"}
_COMMAND = r"`?compose-tunnel (config show|service install|up|down|rebuild|status|logs|generate|doctor|backup|upgrade)\b`?"
_FLAG = r"(--[a-z][a-z0-9-]*)( [^\s]+)?"


def in_make_words(text: str, value_flags: Mapping[str, tuple[str, ...]]) -> str:
    """`text` as a make user types it; `value_flags`: the flags of `up` that take a value, each
    with the values it chooses from (none: any value)."""

    def is_value(name: str, token: str) -> bool:
        if name not in value_flags:
            return False
        return bool(re.search(r"[A-Z0-9:./,=]", token)) or token in value_flags[name]

    def flag(match: re.Match) -> str:
        name, rest = match.group(1), match.group(2) or ""
        value = rest.strip().rstrip(",;.)")
        if not (value and is_value(name, value)):
            if name in ("--tunnels", "--workdir"):
                return name[2:].upper() + rest
            return f'ARGS="{name}"{rest}'
        suffix = rest.strip()[len(value):]
        if name in ("--tunnels", "--workdir"):
            return f"{name[2:].upper()}={value}{suffix}"
        return f'ARGS="{name} {value}"{suffix}'

    text = re.sub(_FLAG, flag, text)
    return re.sub(_COMMAND, lambda m: f"`make {MAKE_TARGETS[m.group(1)]}`", text)


def in_docker_words(text: str) -> str:
    """`text` as a user of the docker CLI plugin types it: `docker tunnel up`."""
    return re.sub(r"\bcompose-tunnel (?=[a-z])", "docker tunnel ", text)
