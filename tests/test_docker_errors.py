"""Docker missing, its daemon unreachable, or Compose v2 missing: one line, exit 2, nothing written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ARGS = ["up", "--cpu", "--livekit", "--tunnels", "tcp.example.com:9055,203.0.113.9:14139"]


def run_up(cwd: Path, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "compose_tunnel", *ARGS], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=60)


def assert_one_line_error(result: subprocess.CompletedProcess, cwd: Path, message: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "hint:" in lines[0], result.stderr
    assert not (cwd / ".compose-tunnel").exists()


def test_docker_not_installed(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    assert_one_line_error(run_up(tmp_path, PATH=str(bin_dir)), tmp_path, "docker is not installed")


def test_compose_plugin_missing(tmp_path):
    if shutil.which("docker") is None:
        pytest.skip("no docker client on this machine")
    empty = tmp_path / "docker-config"
    empty.mkdir()
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True,
                           env={**os.environ, "DOCKER_CONFIG": str(empty)})
    if probe.returncode == 0:
        pytest.skip("a system-wide Compose plugin is installed")
    assert_one_line_error(run_up(tmp_path, DOCKER_CONFIG=str(empty)), tmp_path,
                          "Docker Compose v2 plugin is missing")


def test_daemon_not_running(tmp_path, docker_config):
    if shutil.which("docker") is None:
        pytest.skip("no docker client on this machine")
    result = run_up(tmp_path, DOCKER_HOST=f"unix://{tmp_path}/no-such-docker.sock")
    assert_one_line_error(result, tmp_path, "the Docker daemon is not reachable")


def started_workdir(tmp_path: Path) -> Path:
    """A workdir as `up` leaves it (generated files, what was applied), without an engine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    subprocess.run([sys.executable, "-m", "compose_tunnel", "generate", "--cpu"], cwd=tmp_path, env=env,
                   check=True, capture_output=True)
    work = tmp_path / ".compose-tunnel"
    (work / "applied").mkdir()
    shutil.copy(work / "compose.yml", work / "applied" / "compose.yml")
    shutil.copy(work / ".env", work / "applied" / ".env")
    (work / "applied.toml").write_text('project_name = "reflector"\nprofiles = ["base", "cpu"]\n')
    return tmp_path


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["logs"], ["logs", "-f", "web"],
                                     ["down"]])
@pytest.mark.parametrize("breakage", ["no docker", "no daemon", "no plugin", "no context"])
def test_every_engine_command_fails_in_one_line_without_docker(tmp_path, docker_config, command, breakage):
    cwd = started_workdir(tmp_path)
    full = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    if breakage == "no docker":
        (tmp_path / "bin").mkdir()
        full["PATH"], message = str(tmp_path / "bin"), "docker is not installed"
    elif breakage == "no daemon":
        full["DOCKER_HOST"], message = "unix:///nonexistent", "the Docker daemon is not reachable"
    elif breakage == "no plugin":
        (tmp_path / "empty").mkdir()
        full["DOCKER_CONFIG"], message = str(tmp_path / "empty"), "Docker Compose v2 plugin is missing"
        if shutil.which("docker") is None or subprocess.run(
                ["docker", "compose", "version"], capture_output=True, env=full).returncode == 0:
            pytest.skip("a system-wide Compose plugin is installed")
    else:
        full["DOCKER_CONTEXT"], message = "nope", 'context "nope"'
    if breakage != "no docker" and shutil.which("docker") is None:
        pytest.skip("no docker client on this machine")
    result = subprocess.run([sys.executable, "-m", "compose_tunnel", *command], cwd=cwd, env=full,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "Usage:" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
