"""Root filesystems made on this machine and `docker import`ed: how the suite gets images of real
software with no image registry reachable (Debian's archive, PyPI and npm are).

A recipe makes a root filesystem in a work dir under /var/tmp (debootstrap, then commands in a
chroot with /proc, /dev/pts and the host's resolver), and `build_root_image` imports it under a
tag whose content key is an image label: an image with that key means the minutes of
debootstrap and installs are skipped. Used by debian_images.py (PostgreSQL, Redis) and
reflector_backend.py and reflector_frontend.py (Reflector's own images).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .images import HASH_LABEL, Built, ImageError, _docker, _inspect

MIRROR = "http://deb.debian.org/debian"
WORK_PARENT = Path("/var/tmp")
TAIL_LINES = 30
CHROOT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
              "HOME": "/root", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive",
              "DEBCONF_NONINTERACTIVE_SEEN": "true"}


def say(what: str, message: str) -> None:
    print(f"{what}: {message}", file=sys.stderr, flush=True)


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run(args: list[str], what: str, timeout: float, env: dict[str, str] | None = None,
        log: Path | None = None, cwd: Path | None = None) -> str:
    """Runs a build step; its output (stdout + stderr) goes to `log` too. ImageError with the
    last lines of that output when it fails."""
    try:
        result = subprocess.run(args, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace",
                                timeout=timeout)
    except subprocess.TimeoutExpired as error:
        output = error.stdout or ""
        output = output.decode(errors="replace") if isinstance(output, bytes) else output
        raise ImageError(f"{what} timed out after {timeout:.0f}s:\n{tail(output)}") from None
    except FileNotFoundError:
        raise ImageError(f"{what}: {args[0]} is not installed (Debian: apt-get install "
                         f"{'debootstrap' if 'debootstrap' in args[0] else args[0]})") from None
    if log is not None:
        with log.open("a") as handle:
            handle.write(f"$ {' '.join(args)}\n{result.stdout}\n")
    if result.returncode != 0:
        raise ImageError(f"{what} failed (exit {result.returncode}):\n{tail(result.stdout)}")
    return result.stdout


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path`, deepest first (from /proc/self/mountinfo)."""
    prefix = str(path.resolve())
    points = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = line.split()[4].encode().decode("unicode_escape")  # \040 for a space
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def unmount_all(path: Path) -> None:
    """Unmounts everything below `path`; lazily when a plain umount fails (busy). ImageError if
    anything is still mounted afterwards, so that nobody deletes through a mount."""
    for point in _mounts_under(path):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)
    left = _mounts_under(path)
    if left:
        raise ImageError(f"could not unmount {', '.join(left)}; left {path} in place")


def debootstrap(rootfs: Path, suite: str, log: Path, variant: str = "minbase") -> None:
    run(["debootstrap", f"--variant={variant}", "--components=main", suite, str(rootfs), MIRROR],
        f"debootstrap {suite}", 1200, log=log)
    if not (rootfs / "dev" / "null").is_char_device():
        raise ImageError(f"debootstrap made no device nodes in {rootfs}/dev (mknod not allowed?)")


@contextmanager
def chroot_ready(rootfs: Path) -> Iterator[None]:
    """/proc and a private /dev/pts mounted and the host's resolver in place (apt, pip and npm
    need DNS) for the duration; always unmounted, and the resolver emptied (docker provides
    /etc/resolv.conf and /etc/hostname at run time)."""
    shutil.copyfile("/etc/resolv.conf", rootfs / "etc" / "resolv.conf")
    try:
        run(["mount", "-t", "proc", "proc", str(rootfs / "proc")], "mount /proc", 30)
        (rootfs / "dev" / "pts").mkdir(exist_ok=True)
        run(["mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=0620", "devpts",
             str(rootfs / "dev" / "pts")], "mount /dev/pts", 30)
        yield
    finally:
        unmount_all(rootfs)
        for name in ("resolv.conf", "hostname"):
            (rootfs / "etc" / name).write_text("")


def in_chroot(rootfs: Path, args: list[str], what: str, timeout: float, log: Path,
              env: dict[str, str] | None = None) -> str:
    """Runs `args` inside the chroot (see chroot_ready) with a clean environment."""
    return run(["chroot", str(rootfs), *args], what, timeout, env={**CHROOT_ENV, **(env or {})},
               log=log)


def put(rootfs: Path, target: str, source: Path, mode: int) -> Path:
    dest = rootfs / target.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    os.chmod(dest, mode)
    return dest


def import_rootfs(rootfs: Path, tag: str, key: str, changes: tuple[str, ...], message: str,
                  env: dict[str, str]) -> None:
    """tar the root filesystem (without the contents of /dev, /proc, /sys, /tmp) into
    `docker import`, with `changes` and the key as a label."""
    args = ["docker", "import", "--message", message]
    for change in (*changes, f"LABEL {HASH_LABEL}={key}"):
        args += ["--change", change]
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs),
         "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./tmp/*",
         "--exclude=./var/tmp/*", "-c", "."],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        result = subprocess.run([*args, "-", tag], env=env, stdin=tar.stdout, capture_output=True,
                                text=True, timeout=1800)
    finally:
        tar.stdout.close()
        tar_err = tar.stderr.read().decode(errors="replace")
        tar.wait()
    if tar.returncode != 0:
        raise ImageError(f"tar of {rootfs} failed:\n{tail(tar_err)}")
    if result.returncode != 0:
        raise ImageError(f"docker import {tag} failed:\n{tail(result.stderr)}")


def build_root_image(tag: str, key: str, make: Callable[[Path, Path], dict[str, float]],
                     changes: tuple[str, ...], message: str, env: dict[str, str],
                     force: bool = False, what: str = "images") -> Built:
    """`tag` with label `key`; skipped when that image exists. Otherwise `make(rootfs, log)`
    builds the root filesystem (returning seconds per step) and it is imported. The work dir is
    removed afterwards, never through a mount; a failure's log stays in the ImageError."""
    started = time.monotonic()
    existing = _inspect(tag, env)
    if existing and existing[1] == key and not force:
        return Built(tag, key, False, time.monotonic() - started, existing[2])
    if os.geteuid() != 0:
        raise ImageError(f"building {tag} needs root (debootstrap, chroot, mount)")
    if not shutil.which("debootstrap"):
        raise ImageError("debootstrap is needed (Debian: apt-get install debootstrap)")
    say(what, f"building {tag} ({message}; a few minutes)")
    WORK_PARENT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ct-rootfs-", dir=WORK_PARENT))
    try:
        rootfs = work / "rootfs"
        seconds = make(rootfs, work / "build.log")
        import_started = time.monotonic()
        import_rootfs(rootfs, tag, key, changes, message, env)
        seconds["import"] = time.monotonic() - import_started
    finally:
        unmount_all(work)  # raises (and keeps the dir) rather than rm -rf through a mount
        shutil.rmtree(work, ignore_errors=True)
    after = _inspect(tag, env)
    total = time.monotonic() - started
    say(what, f"built {tag} in {total:.0f}s (" + ", ".join(f"{step} {value:.0f}s"
                                                          for step, value in seconds.items())
        + f"), {(after[2] if after else 0) / 1e6:.0f} MB")
    if existing and after and existing[0] != after[0]:
        _docker(["image", "rm", existing[0]], env, 60)  # the replaced build; kept if still in use
    return Built(tag, key, True, total, after[2] if after else 0)
