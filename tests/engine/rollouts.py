"""What the upgrade tests and bench/rollout.py share: images made for them under tags of their
own (a new release is a `docker build` FROM an image with one more line, tagged over the old
one, as a pull moves a tag), and a stack of theirs behind the TCP tunnel, removed afterwards
with those images (the shared compose-tunnel-test ones are never moved)."""

from __future__ import annotations

import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from engine.relays import TcpRelay
from engine.test_stack import tool


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout)


def build(tag: str, directory: Path, dockerfile: str) -> str:
    """`docker build` of `dockerfile` as `tag`; its image id."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(dockerfile)
    docker("build", "--quiet", "--tag", tag, str(directory), timeout=300)
    return image_id(tag)


def image_id(tag: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()


def app_overlay(work: Path, backend: str, web: str) -> Path:
    """A profiles dir that puts the app on these tags, the server and the web built from build
    contexts of their own (work/server-build, work/web-build: for `rebuild`)."""
    profiles = work / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    for name in ("server-build", "web-build"):
        (work / name).mkdir(exist_ok=True)
    (profiles / "base.yml").write_text(f"""# the app on tags an upgrade test or bench moves.
services:
  server:
    image: "{backend}"
    build: {{context: "{work / 'server-build'}"}}
  worker: {{image: "{backend}"}}
  beat: {{image: "{backend}"}}
  web:
    image: "{web}"
    build: {{context: "{work / 'web-build'}"}}
""")
    return profiles


@contextmanager
def stack_behind_tunnel(work: Path, *, project: str, own: str, public: str, profiles: list[Path],
                        wait: str = "120", timeout: float = 240) -> Iterator[Path]:
    """`up --cpu` of `project` behind the TCP tunnel `public` (HOST:PORT, relayed on loopback
    to Caddy's :443) with these profile dirs; then down with its volumes, and every image
    tagged `own/...` removed."""
    port = int(public.rpartition(":")[2])
    relay = TcpRelay(listen=("127.0.0.1", port), target=("127.0.0.1", 443))
    relay.start()
    try:
        result = tool("up", "--cpu", "--tunnel-tcp", public,
                      *(word for directory in profiles for word in ("--profiles-dir", str(directory))),
                      "--project-name", project, "--publish-ip", "127.0.0.1", "--wait-timeout", wait,
                      cwd=work, timeout=timeout)
        assert result.returncode == 0, result.stdout + result.stderr
        yield work
    finally:
        tool("down", "--volumes", cwd=work)
        relay.stop()
        images = docker("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter",
                        f"reference={own}/*").stdout.split()
        if images:
            docker("rmi", "--force", *images, check=False)
