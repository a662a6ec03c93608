"""The systemd unit that brings a stack back after a reboot: `up` (the saved configuration,
replayed) when the machine starts, then `watch` in the foreground for as long as it runs.

A unit per workdir, named after its project. It carries no secret (it is world-readable): only
the paths, and the few variables that say where Docker is (PATH, HOME, DOCKER_*), so the command
at boot reaches the same engine with the same Compose plugin as the one that installed it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SYSTEM_DIR = Path("/etc/systemd/system")
USER_DIR = Path("~/.config/systemd/user")
MARKER = "# Written by `compose-tunnel service install`"
KEPT_VARIABLES = ("PATH", "HOME", "DOCKER_CONFIG", "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CERT_PATH",
                  "DOCKER_TLS_VERIFY")
START_TIMEOUT = "30min"  # `up` at boot may wait for images to build and every service to be ready


def systemd_runs() -> bool:
    """Whether systemd is this machine's init (sd_booted(3): /run/systemd/system exists)."""
    return os.path.isdir("/run/systemd/system")


def unit_name(project_name: str) -> str:
    return f"compose-tunnel-{project_name}.service"


def default_dir() -> tuple[Path, bool]:
    """Where the unit goes, and whether it is a system unit: root's start at boot with the
    system; another user's are that user's units (they start at boot with lingering)."""
    if os.geteuid() == 0:
        return SYSTEM_DIR, True
    return USER_DIR.expanduser(), False


def _quoted(word: str) -> str:
    """One word of an Exec= line: `%` and `$` are systemd's specifiers and variables."""
    word = word.replace("%", "%%").replace("$", "$$")
    if any(c.isspace() for c in word) or any(c in word for c in "\"'\\;"):
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def command_line(words: list[str]) -> str:
    return " ".join(_quoted(word) for word in words)


def _environment(name: str, value: str) -> str:
    return "Environment=" + _quoted(f"{name}={value}")


@dataclass(frozen=True)
class Unit:
    """What the unit runs: `program` (the Python of this install, with `-m compose_tunnel`) on
    `workdir`, from `directory` (where relative paths of the saved configuration start)."""

    project_name: str
    workdir: Path
    directory: Path
    program: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]
    system: bool

    @property
    def name(self) -> str:
        return unit_name(self.project_name)

    def command(self, *args: str) -> list[str]:
        return [*self.program, *args, "--workdir", str(self.workdir)]

    def text(self) -> str:
        docker = "docker.service containerd.service " if self.system else ""
        lines = [
            MARKER + f" for {self.workdir}; `compose-tunnel service remove` removes it.",
            "[Unit]",
            f"Description=compose-tunnel: the Reflector stack {self.project_name} (up at boot, then watch)",
            f"Wants=network-online.target {docker}".rstrip(),
            f"After=network-online.target {docker}".rstrip(),
            "",
            "[Service]",
            "Type=simple",
            "WorkingDirectory=" + str(self.directory).replace("%", "%%"),
            *(_environment(name, value) for name, value in self.environment),
            "ExecStartPre=" + command_line(self.command("up")),
            "ExecStart=" + command_line(self.command("watch")),
            f"TimeoutStartSec={START_TIMEOUT}",
            "Restart=on-failure",
            "RestartSec=30",
            "",
            "[Install]",
            f"WantedBy={'multi-user.target' if self.system else 'default.target'}",
        ]
        return "\n".join(lines) + "\n"


def unit_for(project_name: str, workdir: Path, system: bool, program: tuple[str, ...],
             environ: dict[str, str] | None = None) -> Unit:
    """The unit of the stack in `workdir`, run from the current directory."""
    environ = dict(os.environ if environ is None else environ)
    kept = tuple((name, environ[name]) for name in KEPT_VARIABLES if environ.get(name))
    return Unit(project_name, Path(workdir).absolute(), Path.cwd(), program, kept, system)


def is_ours(text: str) -> bool:
    return text.startswith(MARKER)
