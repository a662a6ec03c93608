"""`compose-tunnel plugin install|remove`: `docker tunnel …` through the real docker CLI.

DOCKER_CONFIG points at a temporary folder in every test: the user's ~/.docker is never touched.
The docker CLI lists and runs plugins without a daemon, so these need no engine (`docker tunnel
doctor` on a running stack is in tests/engine/test_doctor.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compose_tunnel import __version__

DOCKER = shutil.which("docker")
needs_docker_cli = pytest.mark.skipif(DOCKER is None, reason="no docker CLI on PATH")


def environment(docker_config: Path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_TUNNEL_", "DOCKER_"))}
    return {**env, "DOCKER_CONFIG": str(docker_config), **more}


def run(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compose_tunnel", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def docker(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKER, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def installed(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    env = environment(tmp_path / "docker-config")
    done = run("plugin", "install", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    plugin = tmp_path / "docker-config" / "cli-plugins" / "docker-tunnel"
    assert done.stdout.startswith(f"wrote {plugin}: `docker tunnel up|down|doctor|…`")
    return plugin, env


def test_the_plugin_answers_the_metadata_call(installed, tmp_path):
    plugin, _ = installed
    assert os.access(plugin, os.X_OK)
    answer = subprocess.run([str(plugin), "docker-cli-plugin-metadata"], capture_output=True, text=True)
    assert answer.returncode == 0
    assert json.loads(answer.stdout) == {
        "SchemaVersion": "0.1.0", "Vendor": "compose-tunnel", "Version": __version__,
        "ShortDescription": "Self-host Reflector behind NAT through a TCP and a UDP tunnel (compose-tunnel)"}


@needs_docker_cli
def test_docker_help_lists_it_and_docker_tunnel_help_runs_it(installed, tmp_path):
    _, env = installed
    listed = docker("--help", cwd=tmp_path, env=env)
    assert listed.returncode == 0
    assert any(line.split()[:1] == ["tunnel*"] and "Self-host Reflector behind NAT" in line
               for line in listed.stdout.splitlines()), listed.stdout
    shown = docker("tunnel", "--help", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("Usage: docker tunnel [OPTIONS] COMMAND [ARGS]..."), shown.stdout
    for command in ("up", "down", "doctor", "watch", "service", "plugin"):
        assert f"\n  {command} " in shown.stdout, command
    up_help = docker("tunnel", "up", "--help", cwd=tmp_path, env=env)
    assert up_help.stdout.startswith("Usage: docker tunnel up [OPTIONS]"), up_help.stdout


@needs_docker_cli
def test_hints_through_the_plugin_name_docker_tunnel(installed, tmp_path):
    _, env = installed
    done = docker("tunnel", "doctor", cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == ("compose-tunnel: error: nothing has been started from .compose-tunnel "
                                   "(hint: run `docker tunnel up` first, or pass the --workdir you used)")


def test_install_again_and_remove(installed, tmp_path):
    plugin, env = installed
    again = run("plugin", "install", cwd=tmp_path, env=env)
    assert again.stdout.startswith(f"{plugin} is up to date")
    removed = run("plugin", "remove", cwd=tmp_path, env=env)
    assert removed.returncode == 0 and removed.stdout.strip() == f"removed {plugin}"
    assert not plugin.exists()
    none = run("plugin", "remove", cwd=tmp_path, env=env)
    assert none.returncode == 0 and none.stdout.startswith("no plugin to remove")


def test_another_docker_tunnel_is_left_alone(tmp_path):
    plugins = tmp_path / "docker-config" / "cli-plugins"
    plugins.mkdir(parents=True)
    theirs = plugins / "docker-tunnel"
    theirs.write_text("#!/bin/sh\necho someone else's\n")
    env = environment(tmp_path / "docker-config")
    for command in ("install", "remove"):
        done = run("plugin", command, cwd=tmp_path, env=env)
        assert done.returncode == 2 and "is not compose-tunnel's plugin" in done.stderr, done.stderr
    assert theirs.read_text() == "#!/bin/sh\necho someone else's\n"


def test_without_docker_config_it_goes_to_home_docker(tmp_path):
    env = environment(tmp_path / "unused")
    del env["DOCKER_CONFIG"]
    env["HOME"] = str(tmp_path / "home")
    done = run("plugin", "install", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "home" / ".docker" / "cli-plugins" / "docker-tunnel").is_file()
