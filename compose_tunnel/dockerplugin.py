"""The Docker CLI plugin `docker-tunnel`: `docker tunnel up|down|doctor|…` as `docker compose`.

The docker CLI finds executables named docker-NAME in $DOCKER_CONFIG/cli-plugins
(~/.docker/cli-plugins by default), asks each `docker-cli-plugin-metadata` for a JSON object
(SchemaVersion 0.1.0, Vendor, Version, ShortDescription) to list it in `docker --help`, and runs
`docker tunnel ARGS` as `docker-tunnel tunnel ARGS`. A small shell script does both: the metadata
without starting Python (`docker --help` asks every plugin), the rest by exec'ing this install's
Python on compose_tunnel, told (COMPOSE_TUNNEL_VIA=docker) to speak as `docker tunnel`.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

NAME = "docker-tunnel"
MARKER = "# docker-tunnel: written by `compose-tunnel plugin install`"
SHORT_DESCRIPTION = "Self-host Reflector behind NAT through a TCP and a UDP tunnel (compose-tunnel)"


def plugins_dir(environ: dict[str, str] | None = None) -> Path:
    """Where the docker CLI looks for plugins: $DOCKER_CONFIG/cli-plugins, ~/.docker/cli-plugins."""
    environ = os.environ if environ is None else environ
    config = environ.get("DOCKER_CONFIG")
    return (Path(config) if config else Path("~/.docker").expanduser()) / "cli-plugins"


def metadata(version: str) -> dict[str, str]:
    return {"SchemaVersion": "0.1.0", "Vendor": "compose-tunnel", "Version": version,
            "ShortDescription": SHORT_DESCRIPTION}


def script(program: list[str], version: str) -> str:
    """The plugin: `program` (e.g. [python, -m, compose_tunnel]) behind the plugin protocol."""
    return "\n".join([
        "#!/bin/sh",
        MARKER + "; `compose-tunnel plugin remove` removes it.",
        "# `docker tunnel ARGS` runs `compose-tunnel ARGS`.",
        'if [ "$1" = docker-cli-plugin-metadata ]; then',
        f"\tprintf '%s\\n' {shlex.quote(json.dumps(metadata(version)))}",
        "\texit 0",
        "fi",
        '[ "$1" = tunnel ] && shift',
        f'COMPOSE_TUNNEL_VIA=docker exec {" ".join(shlex.quote(word) for word in program)} "$@"',
        "",
    ])


def is_ours(text: str) -> bool:
    return MARKER in text.split("\n", 2)[1] if text.count("\n") >= 2 else False
