"""`compose-tunnel service install|remove|status`: the unit that runs `up` at boot, then `watch`.

The unit is checked by systemd's own `systemd-analyze verify` (Debian's systemd package, see
tests/system-deps.sh), which loads it as systemd would: sections, directives, the executables
named. Where systemd is this machine's init, the tests pass --no-enable: they never enable a
unit on the machine that runs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from compose_tunnel.systemdunit import systemd_runs

TUNNELS = "my-tunnel.example.com:9055,203.0.113.9:14139"
PROJECT = "ct-unit"
UNIT = f"compose-tunnel-{PROJECT}.service"
NO_ENABLE = ["--no-enable"] if systemd_runs() else []


def run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "compose_tunnel", *args], cwd=cwd, capture_output=True,
                          text=True, env=full_env, timeout=60)


def verify(unit: Path) -> subprocess.CompletedProcess:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: tests/system-deps.sh installs Debian's systemd package"
    return subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)


@pytest.fixture
def configured(tmp_path: Path) -> Path:
    """A directory with a saved configuration (generate: no engine needed)."""
    done = run("generate", "--cpu", "--livekit", "--tunnels", TUNNELS, "-p", PROJECT, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path


def test_install_writes_a_unit_systemd_accepts(configured):
    units = configured / "units"
    done = run("service", "install", "--unit-dir", str(units), *NO_ENABLE, cwd=configured)
    assert done.returncode == 0, done.stderr
    unit = units / UNIT
    assert done.stdout.splitlines()[0] == f"wrote {unit}"
    if not systemd_runs():  # one line saying so, and what to run instead
        assert done.stdout.splitlines()[1] == (
            f"systemd does not run here: nothing enabled; at boot run {sys.executable} -m compose_tunnel up "
            f"--workdir {configured}/.compose-tunnel && {sys.executable} -m compose_tunnel watch "
            f"--workdir {configured}/.compose-tunnel")
    checked = verify(unit)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = unit.read_text()
    assert f"ExecStartPre={sys.executable} -m compose_tunnel up --workdir {configured}/.compose-tunnel\n" in text
    assert f"ExecStart={sys.executable} -m compose_tunnel watch --workdir {configured}/.compose-tunnel\n" in text
    assert f"WorkingDirectory={configured}\n" in text
    assert oct(unit.stat().st_mode & 0o777) == "0o644"
    secrets = tomllib.loads((configured / ".compose-tunnel" / "secrets.toml").read_text())
    assert not [name for name, value in secrets.items() if str(value) in text]  # world-readable: no secret
    again = run("service", "install", "--unit-dir", str(units), *NO_ENABLE, cwd=configured)
    assert again.stdout.splitlines()[0] == f"{unit} is up to date"


def test_verify_rejects_a_broken_unit(configured):
    """The check above can fail: the same unit naming a Python that does not exist is refused."""
    units = configured / "units"
    run("service", "install", "--unit-dir", str(units), *NO_ENABLE, cwd=configured)
    broken = configured / "broken" / UNIT
    broken.parent.mkdir()
    broken.write_text((units / UNIT).read_text().replace(sys.executable, "/nonexistent/python"))
    checked = verify(broken)
    assert checked.returncode != 0 and "/nonexistent/python" in checked.stderr, checked.stderr


def test_a_workdir_path_with_spaces_and_percent_is_quoted(tmp_path):
    odd = tmp_path / "my 100% stack"
    odd.mkdir()
    assert run("generate", "--cpu", "-p", PROJECT, cwd=odd).returncode == 0
    units = tmp_path / "units"
    done = run("service", "install", "--unit-dir", str(units), *NO_ENABLE, cwd=odd)
    assert done.returncode == 0, done.stderr
    text = (units / UNIT).read_text()
    assert f'watch --workdir "{tmp_path}/my 100%% stack/.compose-tunnel"\n' in text
    assert f"WorkingDirectory={tmp_path}/my 100%% stack\n" in text
    checked = verify(units / UNIT)
    assert checked.returncode == 0, checked.stderr


def test_status_and_remove(configured):
    units = configured / "units"
    status = run("service", "status", "--unit-dir", str(units), cwd=configured)
    assert status.returncode == 0 and status.stdout.startswith("not installed"), status.stdout
    run("service", "install", "--unit-dir", str(units), *NO_ENABLE, cwd=configured)
    status = run("service", "status", "--unit-dir", str(units), cwd=configured)
    assert status.stdout.splitlines()[0] == f"installed: {units / UNIT}"
    removed = run("service", "remove", "--unit-dir", str(units), cwd=configured)
    assert removed.returncode == 0 and removed.stdout.splitlines()[-1] == f"removed {units / UNIT}"
    assert not (units / UNIT).exists()
    again = run("service", "remove", "--unit-dir", str(units), cwd=configured)
    assert again.returncode == 0 and again.stdout.startswith("no service installed")


def test_a_unit_not_written_by_compose_tunnel_is_left_alone(configured):
    units = configured / "units"
    units.mkdir()
    (units / UNIT).write_text("[Service]\nExecStart=/bin/true\n")
    for command in ("install", "remove"):
        done = run("service", command, "--unit-dir", str(units), *NO_ENABLE[:1 if command == "install" else 0],
                   cwd=configured)
        assert done.returncode == 2 and "not written by compose-tunnel" in done.stderr, done.stderr
        assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert (units / UNIT).read_text() == "[Service]\nExecStart=/bin/true\n"


def test_without_a_saved_configuration_nothing_is_written(tmp_path):
    done = run("service", "install", "--unit-dir", str(tmp_path / "units"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("compose-tunnel: error: no saved configuration in .compose-tunnel")
    assert not (tmp_path / "units").exists()


def test_make_service_installs_it(configured):
    """`make service` installs the unit; hints are in make's words."""
    root = Path(__file__).resolve().parents[1]
    units = configured / "units"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    make = ["make", "-s", "-C", str(root), f"WORKDIR={configured / '.compose-tunnel'}"]
    status = subprocess.run([*make, "service", f"ARGS=--unit-dir {units} {' '.join(NO_ENABLE)}"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"wrote {units / UNIT}" in status.stdout
    assert verify(units / UNIT).returncode == 0
    shown = run("service", "remove", "--unit-dir", str(units), cwd=configured)
    assert shown.returncode == 0
    hint = run("service", "status", "--unit-dir", str(units), cwd=configured, env={"COMPOSE_TUNNEL_VIA": "make"})
    assert "`make service` installs it" in hint.stdout, hint.stdout
