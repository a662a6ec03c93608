"""Hostile and careless inputs: each is one line on stderr, the right exit code, no traceback,
and the workdir exactly as it was. Two runs on one workdir never mix their files."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

GOOD = ["--cpu", "--livekit", "--tunnels", "my-tunnel.example.com:9055,203.0.113.9:14139",
        "--lan-ip", "192.0.2.1"]


def run(*args: str, cwd: Path, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "compose_tunnel", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=timeout)


def snapshot(directory: Path) -> dict:
    return {str(p.relative_to(directory)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            for p in sorted(directory.rglob("*")) if p.is_file()} if directory.exists() else {}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, text
    path.write_text(text.replace(old, new))


SAVED = [  # (file, text to replace, replacement, command, message)
    ("config.toml", 'profiles = [\n    "cpu",\n    "livekit",\n]', "profiles = 5", ["generate"],
     "profiles must be a list of names"),
    ("config.toml", "[settings]\n", "[settings]\ndns_timeout = 'abc'\n", ["generate"], "dns_timeout must be a number"),
    ("config.toml", "[settings]\n", "[settings]\nproject_name = 5\n", ["generate"], "project_name must be text"),
    ("config.toml", "[settings]\n", "[settings]\ntunnels = 5\n", ["generate"], "tunnels must be text"),
    ("secrets.toml", "secret_key = ", 'secret_key = ""\nold_secret_key = ', ["generate"],
     "secret_key must be a non-empty line of text"),
    ("secrets.toml", "secret_key = ", "secret_key = {a = 1}\nold_secret_key = ", ["generate"],
     "secret_key must be a non-empty line of text"),
]


@pytest.mark.parametrize("name, old, new, command, message", SAVED, ids=[s[4] for s in SAVED])
def test_saved_files_with_wrong_values_are_named_in_one_line(tmp_path, name, old, new, command, message):
    assert run("generate", *GOOD, cwd=tmp_path).returncode == 0
    edit(tmp_path / ".compose-tunnel" / name, old, new)
    before = snapshot(tmp_path / ".compose-tunnel")
    result = run(*command, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and name in lines[0], result.stderr
    assert snapshot(tmp_path / ".compose-tunnel") == before


@pytest.mark.parametrize("project", ['""', '"--help"', "5", '"My Stack"'])
def test_a_bad_applied_project_name_never_reaches_compose(tmp_path, project):
    assert run("generate", *GOOD, cwd=tmp_path).returncode == 0
    (tmp_path / ".compose-tunnel" / "applied.toml").write_text(f"project_name = {project}\n")
    for command in (["status"], ["down"], ["logs"]):
        result = run(*command, cwd=tmp_path)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "is not a compose project name" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--tunnels", ""], "--tunnels is empty"),
    (["--workdir", ""], "--workdir is empty"),
    (["--project-name", ""], "--project-name is empty"),
    (["--profile", ""], "--profile is empty"),
    (["--ip", "0.0.0.0"], "is not an address anyone can reach"),
    (["--profile", "tunnel"], "profile 'tunnel' is turned on by its address"),
    (["--livekit", "--tunnel-tcp", "t.example.com:9055", "--profile", "tunnel-udp"],
     "profile 'tunnel-udp' is turned on by its address"),
])
def test_empty_and_meaningless_values_are_refused_and_the_saved_stack_is_kept(tmp_path, args, message):
    assert run("generate", *GOOD, cwd=tmp_path).returncode == 0
    before = snapshot(tmp_path / ".compose-tunnel")
    result = run("generate", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert snapshot(tmp_path / ".compose-tunnel") == before
    assert not (tmp_path / "compose.yml").exists()  # an empty --workdir is not the current directory


def test_a_second_run_waits_for_the_first_then_gives_up_naming_it(tmp_path):
    assert run("generate", *GOOD, cwd=tmp_path).returncode == 0
    lock = tmp_path / ".compose-tunnel" / ".lock"
    before = snapshot(tmp_path / ".compose-tunnel")
    with open(lock, "r+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242")
        held.flush()
        result = run("generate", "--gpu", "--gpu-image", "x:1", cwd=tmp_path,
                     env={"COMPOSE_TUNNEL_LOCK_TIMEOUT": "0.6"})
    assert result.returncode == 2
    assert "waiting for another compose-tunnel (pid 4242)" in result.stderr
    assert "is in use by another compose-tunnel (pid 4242) for more than 0.6s" in result.stderr
    lock.write_text("")
    assert snapshot(tmp_path / ".compose-tunnel") == before


def test_two_runs_at_once_never_leave_a_mixed_workdir(tmp_path):
    full = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    one = [*GOOD]
    two = ["--gpu", "--gpu-image", "x:1", "--domain", "reflector.example.com", "--lan-ip", "192.0.2.1"]
    for _ in range(8):
        runs = [subprocess.Popen([sys.executable, "-m", "compose_tunnel", "generate", *args], cwd=tmp_path,
                                 env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for args in (one, two)]
        assert [r.wait(timeout=60) for r in runs] == [0, 0]
        work = tmp_path / ".compose-tunnel"
        saved = tomllib.loads((work / "config.toml").read_text())["settings"]
        compose = (work / "compose.yml").read_text()
        # Whichever ran last, every file is from that one run.
        assert ("  gpu:\n" in compose) == ("gpu" in saved.get("profiles", []))
        assert ("https://reflector.example.com" in (work / "server.env").read_text()) == ("domain" in saved)


def test_a_workdir_whose_applied_files_are_gone_is_one_line(tmp_path, docker_config):
    assert run("generate", *GOOD, cwd=tmp_path).returncode == 0
    (tmp_path / ".compose-tunnel" / "applied.toml").write_text('project_name = "ct-test-gone"\n')
    result = run("status", cwd=tmp_path)
    if "daemon is not reachable" in result.stderr:
        pytest.skip("no Docker Engine here")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "docker compose ps failed" in lines[0] and "applied/.env" in lines[0]


def tree(directory: Path) -> dict:
    return {k: v for k, v in snapshot(directory).items() if k != ".lock"}


def test_a_run_killed_at_any_write_step_leaves_one_whole_generation(tmp_path):
    """kill -9 (os._exit through the test hook) at every step of writing a new generation; the
    next run finds either the old generation or the new one, whole, and no leftovers."""
    import shutil

    new = ["--gpu", "--gpu-image", "x:1", "--domain", "reflector.example.com", "--lan-ip", "192.0.2.1",
           "--garage"]
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old_dir.mkdir()
    assert run("generate", *GOOD, cwd=old_dir).returncode == 0
    shutil.copytree(old_dir, new_dir)
    assert run("generate", *new, cwd=new_dir).returncode == 0
    old, fresh = tree(old_dir / ".compose-tunnel"), tree(new_dir / ".compose-tunnel")
    assert old != fresh
    outcomes = []
    for step in range(1, 100):
        case = tmp_path / f"crash-{step}"
        shutil.copytree(old_dir, case)
        crashed = run("generate", *new, cwd=case, env={"COMPOSE_TUNNEL_TEST_CRASH_AT": str(step)})
        if crashed.returncode == 0:
            break  # past the last write step
        assert crashed.returncode == 137, crashed.stderr
        recovered = run("down", cwd=case)  # takes the lock, so it recovers; nothing was started
        assert recovered.returncode == 0, recovered.stderr
        after = tree(case / ".compose-tunnel")
        assert after in (old, fresh), f"step {step}: mixed files"
        assert not [p for p in (case / ".compose-tunnel").rglob(".*tmp*")], f"step {step}: leftovers"
        outcomes.append("new" if after == fresh else "old")
    assert len(outcomes) > 10 and "old" in outcomes and "new" in outcomes, outcomes
    # Before the journal is on disk a crash drops the new generation; after it, completes it.
    assert outcomes == sorted(outcomes, key=["old", "new"].index)


def test_an_immutable_workdir_is_one_line_and_stays_as_it_was(tmp_path):
    """`chattr +i` (the issue's case): nothing can change in the workdir, and every command says so."""
    assert run("generate", *GOOD, cwd=tmp_path).returncode == 0
    work = tmp_path / ".compose-tunnel"
    before = snapshot(work)
    subprocess.run(["chattr", "+i", str(work)], check=True)
    try:
        for args in (["config", "reset"], ["generate", "-p", "other"],
                     ["generate", "--reset", "--cpu"]):
            result = run(*args, cwd=tmp_path)
            assert result.returncode == 2, (args, result.stdout, result.stderr)
            assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
            assert "Operation not permitted" in result.stderr and "hint:" in result.stderr
    finally:
        subprocess.run(["chattr", "-i", str(work)], check=True)
    assert snapshot(work) == before
