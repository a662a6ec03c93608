"""`service install|remove|status`: the stack comes back after a reboot.

install writes the workdir's unit (systemdunit) and, where systemd runs, enables it; without
systemd it says so and what to run at boot instead. remove disables and deletes only a unit it
wrote. A failed `systemctl` leaves no new unit behind.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .. import state
from ..errors import UserError, last_line
from ..systemdunit import Unit, default_dir, is_ours, systemd_runs, unit_for
from ..workspace import PUBLIC_MODE, Workspace, replace_file

SYSTEMCTL_TIMEOUT = 60.0
PROGRAM = (sys.executable, "-m", "compose_tunnel")


def _unit(workspace: Workspace, unit_dir: str | Path | None) -> tuple[Unit, Path]:
    settings = state.load_settings(workspace)
    if settings is None:
        raise UserError(f"no saved configuration in {workspace.root}: the service would have nothing to start",
                        hint="run `compose-tunnel up` first, or pass the --workdir you used")
    directory, system = default_dir()
    if unit_dir is not None:
        directory = Path(unit_dir)
    unit = unit_for(settings.project_name, workspace.root, system, PROGRAM)
    return unit, directory / unit.name


def _systemctl(unit: Unit, *args: str) -> subprocess.CompletedProcess:
    scope = [] if unit.system else ["--user"]
    try:
        return subprocess.run(["systemctl", *scope, *args], capture_output=True, text=True,
                              timeout=SYSTEMCTL_TIMEOUT, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return subprocess.CompletedProcess(["systemctl"], 127, "", "systemctl: command not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(["systemctl"], 124, "", f"systemctl did not answer within "
                                           f"{SYSTEMCTL_TIMEOUT:g} s")


def _instead(unit: Unit) -> str:
    from ..systemdunit import command_line

    return f"{command_line(unit.command('up'))} && {command_line(unit.command('watch'))}"


def install(workspace: Workspace, unit_dir: str | Path | None = None, enable: bool = True) -> list[str]:
    """Write the unit (0644: it holds no secret) and enable it where systemd runs."""
    unit, path = _unit(workspace, unit_dir)
    existing = path.read_text() if path.exists() else None
    if existing is not None and not is_ours(existing):
        raise UserError(f"{path} exists and was not written by compose-tunnel",
                        hint="move it away, or pass --unit-dir DIR")
    text = unit.text()
    if existing == text:
        wrote = f"{path} is up to date"
    else:
        replace_file(path, text, PUBLIC_MODE, "run it as root for a system unit, or pass --unit-dir DIR")
        wrote = f"{'wrote' if existing is None else 'updated'} {path}"
    if not systemd_runs() or not enable:
        why = "systemd does not run here" if enable else "not enabled (--no-enable)"
        return [wrote, f"{why}: nothing enabled; at boot run {_instead(unit)}"]
    steps = [("daemon-reload",), ("enable", str(path) if unit_dir is not None else unit.name)]
    for step in steps:
        done = _systemctl(unit, *step)
        if done.returncode != 0:
            if existing is None:  # as it was: no unit, or the one before
                path.unlink(missing_ok=True)
            elif existing != text:
                replace_file(path, existing, PUBLIC_MODE, "put it back by hand")
            _systemctl(unit, "daemon-reload")
            raise UserError(f"systemctl {' '.join(step)} failed: {last_line(done.stderr) or 'no output'}",
                            hint="run it as root for a system unit (or as the user for a user unit)")
    scope = "" if unit.system else " --user"
    lines = [wrote, f"enabled {unit.name}: the stack starts at boot, then `watch` follows it; "
             f"`systemctl{scope} start {unit.name}` starts it now"]
    if not unit.system:
        lines.append("a user's units start at boot only with lingering: `loginctl enable-linger`")
    return lines


def remove(workspace: Workspace, unit_dir: str | Path | None = None) -> list[str]:
    """Disable and delete the unit install wrote (only that one)."""
    unit, path = _unit(workspace, unit_dir)
    if not path.exists():
        return [f"no service installed for {workspace.root} ({path} does not exist)"]
    if not is_ours(path.read_text()):
        raise UserError(f"{path} was not written by compose-tunnel: not removing it",
                        hint="remove it yourself if it is yours to remove")
    lines = []
    if systemd_runs():
        disabled = _systemctl(unit, "disable", "--now", unit.name)
        if disabled.returncode == 0:
            lines.append(f"disabled and stopped {unit.name}")
    try:
        path.unlink()
    except OSError as error:
        raise UserError(f"cannot remove {path}: {error.strerror or error}",
                        hint="run it as the user who installed it") from None
    if systemd_runs():
        _systemctl(unit, "daemon-reload")
    return lines + [f"removed {path}"]


def status(workspace: Workspace, unit_dir: str | Path | None = None) -> list[str]:
    """Whether the unit is installed, as install would write it now, enabled and running."""
    unit, path = _unit(workspace, unit_dir)
    if not path.exists():
        return [f"not installed ({path} does not exist); `compose-tunnel service install` installs it"]
    text = path.read_text()
    if not is_ours(text):
        return [f"{path} exists but was not written by compose-tunnel"]
    lines = [f"installed: {path}" + ("" if text == unit.text() else
                                     " (written for another command or environment: "
                                     "`compose-tunnel service install` writes it again)")]
    if not systemd_runs():
        return lines + [f"systemd does not run here: nothing runs it; at boot run {_instead(unit)}"]
    enabled = _systemctl(unit, "is-enabled", unit.name).stdout.strip() or "unknown"
    active = _systemctl(unit, "is-active", unit.name).stdout.strip() or "unknown"
    return lines + [f"{unit.name}: {enabled}, {active}"]
