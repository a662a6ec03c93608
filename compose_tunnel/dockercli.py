"""The docker CLI, each call bounded in time: what `doctor` and `watch` ask the engine.

python-on-whales (stack.py) waits as long as the engine takes; a check must not. A hung daemon
becomes DockerTimeout, a failed call a CompletedProcess with its code, and nothing here imports
more than subprocess.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

DEFAULT_TIMEOUT = 5.0


class DockerTimeout(Exception):
    """The engine did not answer in time."""


class DockerCli:
    """`docker` and `docker compose` on one project (its applied files)."""

    def __init__(self, project_name: str, project_dir: Path, compose_file: Path, env_file: Path) -> None:
        self.project_name = project_name
        self.compose_args = ["compose", "--project-name", project_name, "--project-directory",
                             str(Path(project_dir).absolute()), "--file", str(Path(compose_file).absolute()),
                             "--env-file", str(Path(env_file).absolute())]

    def run(self, *args: str, timeout: float = DEFAULT_TIMEOUT) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DockerTimeout(f"docker {args[0]} did not answer within {timeout:g} s") from None
        except FileNotFoundError:
            return subprocess.CompletedProcess(["docker", *args], 127, "", "docker: command not found")

    def compose(self, *args: str, timeout: float = DEFAULT_TIMEOUT) -> subprocess.CompletedProcess:
        return self.run(*self.compose_args, *args, timeout=timeout)

    def container(self, service: str) -> str:
        """The name Compose gives the first container of a service."""
        return f"{self.project_name}-{service}-1"
