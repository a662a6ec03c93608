"""`upgrade` refuses, in one line with a hint and exit code 2, before it touches the engine:
nothing started, a stack on a swarm, a saved configuration that is not what runs, an
`x-rollout` it cannot use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TUNNEL = ["--cpu", "--tunnel-tcp", "tcp.example.com:9055"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    return subprocess.run([sys.executable, "-m", "compose_tunnel", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def applied(project: Path, name: str, profiles: list[str], target: str = "compose") -> None:
    """What `up` would have recorded after starting `profiles` as `name`."""
    listed = ", ".join(f'"{p}"' for p in profiles)
    (project / ".compose-tunnel" / "applied.toml").write_text(
        f'project_name = "{name}"\nprofiles = [{listed}]\ntarget = "{target}"\n')


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("compose-tunnel: error: "), result.stderr
    assert "(hint: " in lines[0] and "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("command", [["upgrade"], ["upgrade", "--dry-run"]])
def test_nothing_started_is_refused(tmp_path, command):
    line = one_line_error(run(*command, cwd=tmp_path))
    assert "nothing has been started from" in line and "compose-tunnel up" in line


@pytest.mark.parametrize("command", [["rebuild"], ["rebuild", "--dry-run"]])
def test_rebuild_without_a_saved_configuration_is_refused(tmp_path, command):
    line = one_line_error(run(*command, cwd=tmp_path))
    assert "no saved configuration in" in line and "compose-tunnel up" in line


def test_a_stack_on_a_swarm_is_refused(tmp_path):
    assert run("generate", *TUNNEL, cwd=tmp_path).returncode == 0
    applied(tmp_path, "reflector", ["base", "cpu", "caddy", "tunnel"], "swarm")
    line = one_line_error(run("upgrade", cwd=tmp_path))
    assert "runs on a swarm" in line and "Swarm updates each service" in line


def test_a_saved_configuration_that_is_not_what_runs_is_refused(tmp_path):
    assert run("generate", *TUNNEL, "--livekit", cwd=tmp_path).returncode == 0
    applied(tmp_path, "reflector", ["base", "cpu", "caddy", "tunnel"])
    before = {p.name: p.read_bytes() for p in (tmp_path / ".compose-tunnel").iterdir() if p.is_file()}
    line = one_line_error(run("upgrade", cwd=tmp_path))
    assert "is not what runs (reflector: base, cpu, caddy, tunnel)" in line
    assert "`compose-tunnel up` applies the configuration" in line
    after = {p.name: p.read_bytes() for p in (tmp_path / ".compose-tunnel").iterdir() if p.is_file()}
    assert after == before  # nothing written


def test_upgrade_and_rebuild_list_their_options(tmp_path):
    for command in ("upgrade", "rebuild"):
        result = run(command, "--help", cwd=tmp_path)
        assert result.returncode == 0
        for option in ("--dry-run", "--pull / --no-pull", "--wait-timeout"):
            assert option in result.stdout, (command, option)
