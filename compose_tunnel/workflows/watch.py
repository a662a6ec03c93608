"""`watch`: the foreground loop a service manager keeps running next to the stack.

Every interval it resolves the UDP tunnel's host again, with the configured resolver. When the
address moved, LiveKit would go on advertising the old one and every participant's media would
fail: livekit.yaml is rendered again with the new node_ip (nothing else of it changes), its
digest in .env follows, and livekit-server alone is recreated; `node_ip A -> B` is logged. It
also runs doctor's cheap checks and logs what fails (and when it passes again), restarting
nothing. One watch per workdir (WATCH_LOCK); the workdir's own lock is taken only while it
writes, so `up` and the others run beside it. SIGTERM (or `stop`) ends it between two rounds.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from .. import envfile
from ..checks import FAIL, Install
from ..errors import EngineError, UserError, last_line
from ..renderers import DOTENV, LIVEKIT, config_digest, livekit_with_node_ip
from ..workspace import SECRET_MODE, FileContent, Workspace
from .doctor import diagnose, line, load_install
from .stacks import APPLIED_DOTENV

WATCH_LOCK = ".watch.lock"
DEFAULT_INTERVAL = 60.0
RESTART_TIMEOUT = 300.0  # recreating livekit-server: its image is local, its start is quick
Say = Callable[[str], None]


@contextmanager
def watching(workspace: Workspace) -> Iterator[None]:
    """Hold the workdir's watch lock for the loop's life; another watch is refused at once."""
    import fcntl

    path = workspace.path(WATCH_LOCK)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise UserError(f"cannot lock {path}: {error.strerror or error}",
                        hint="check the permissions of the workdir (--workdir)") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise UserError(f"{workspace.root} is already watched (pid {holder})",
                            hint="one watch per workdir: stop the other one first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def follow_address(install: Install, say: Say, last_problem: list[str]) -> bool:
    """One look at the UDP tunnel host: True when livekit-server was moved to its new address.
    A lookup that fails keeps the old node_ip (said once, until it changes)."""
    settings = install.settings
    udp = settings.tunnel_udp
    if not (udp and install.has("livekit")) or settings.node_ip:
        return False
    workspace = install.workspace
    current_text = workspace.read(LIVEKIT)
    if not current_text:
        return False
    rtc = (install.livekit or {}).get("rtc") or {}
    current = rtc.get("node_ip")
    try:
        resolved = install.resolve(udp.host)
    except UserError as error:
        if last_problem != [error.message]:
            say(f"{error.message}: keeping node_ip {current}")
            last_problem[:] = [error.message]
        return False
    last_problem.clear()
    if resolved == current:
        return False
    with workspace.locked(say=say):
        if workspace.read(LIVEKIT) != current_text:
            return False  # an `up` rendered it meanwhile: the next round looks again
        text = livekit_with_node_ip(current_text, resolved)
        digest = {"LIVEKIT_CONFIG_DIGEST": config_digest(text)}
        files = {LIVEKIT: FileContent(text, SECRET_MODE)}
        for name in (DOTENV, APPLIED_DOTENV):
            existing = workspace.read(name)
            if existing is not None:
                files[name] = FileContent(envfile.update(existing, digest, ()))
        workspace.write(files)
        restarted = install.docker.compose("up", "--detach", "--no-deps", "livekit-server",
                                           timeout=RESTART_TIMEOUT)
    if restarted.returncode != 0:
        raise EngineError(f"node_ip {current} -> {resolved}: livekit.yaml rendered again, but restarting "
                          f"livekit-server failed: {last_line(restarted.stderr) or 'no output'}",
                          hint="`compose-tunnel up` applies it")
    say(f"node_ip {current} -> {resolved}: livekit.yaml rendered again, livekit-server restarted")
    return True


def watch(workspace: Workspace, *, interval: float = DEFAULT_INTERVAL, say: Say,
          stop: threading.Event) -> None:
    """Follow the UDP tunnel's address and log what the cheap checks find, every `interval`
    seconds until `stop` is set. The install is read again every round: an `up` meanwhile may
    have changed the tunnels or the files."""
    with watching(workspace):
        install = load_install(workspace)
        udp = install.settings.tunnel_udp
        follows = f"following {udp.host}" if udp and not install.settings.node_ip else "no UDP tunnel host to follow"
        say(f"watching {workspace.root} ({install.applied.project_name}) every {interval:g} s; {follows}")
        failing: dict[str, str] = {}
        problem: list[str] = []
        first = True
        while not stop.is_set():
            began = time.monotonic()
            if not first:
                try:
                    install = load_install(workspace)
                except UserError as error:  # `down` meanwhile: say so once, look again next round
                    if problem != [error.message]:
                        say(f"{error.message}; watching on")
                        problem[:] = [error.message]
                    stop.wait(interval)
                    continue
            first = False
            follow_address(install, say, problem)
            for result in diagnose(install, cheap_only=True).results:
                if result.status == FAIL and failing.get(result.name) != result.message:
                    say(line(result))
                    failing[result.name] = result.message
                elif result.status != FAIL and result.name in failing:
                    say(f"{line(result)} (passes again)")
                    del failing[result.name]
            stop.wait(max(0.0, interval - (time.monotonic() - began)))
    say("watch stopped")
