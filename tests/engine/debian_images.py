"""Test images of real software, built from Debian packages (no image registry is reachable in
tests, but Debian's package archive is).

    compose-tunnel-test/debian:<key>        debootstrap --variant=minbase + postgresql, redis,
                                            curl, socat, busybox; `docker import`ed
    compose-tunnel-test/postgres:1          behaves like postgres:17-alpine (debian/postgres/)
    compose-tunnel-test/redis:1             behaves like redis:7.2-alpine (debian/redis/)
    compose-tunnel-test/hatchet-standin:1   a STAND-IN for hatchet-lite (debian/hatchet/)
    compose-tunnel-test/ollama-standin:1    a STAND-IN for ollama/ollama (debian/ollama/)

The base image's key is a sha256 over the suite, the mirror, the package list, the `docker
import` changes, the Python that makes the root filesystem and the files in debian/base/; an
image with that key as its tag and label means the few minutes of debootstrap are skipped. The
derived images are `docker build`s FROM it, skipped like images.py does: by a content-hash label
over their build context and the base image's tag.

    python -m tests.engine.debian_images [--force]     builds them by hand (DOCKER_CONFIG as usual)
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .images import HASH_LABEL, Built, ImageError, _docker, _inspect, content_hash

DEBIAN = Path(__file__).parent / "debian"
BASE_RECIPE = DEBIAN / "base"

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
VARIANT = "minbase"
PG_MAJOR = "15"
PACKAGES = ("postgresql", "postgresql-client", "redis-server", "curl", "ca-certificates",
            "busybox-static", "socat")
PATH = (f"/usr/lib/postgresql/{PG_MAJOR}/bin:"
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
IMPORT_CHANGES = (f"ENV PATH={PATH}", "ENV LANG=C.UTF-8", 'CMD ["bash"]')

BASE_REPO = "compose-tunnel-test/debian"
POSTGRES = "compose-tunnel-test/postgres:1"
REDIS = "compose-tunnel-test/redis:1"
HATCHET = "compose-tunnel-test/hatchet-standin:1"
OLLAMA = "compose-tunnel-test/ollama-standin:1"

WORK_PARENT = Path("/var/tmp")
TAIL_LINES = 30
DERIVED = (("postgres", POSTGRES), ("redis", REDIS), ("hatchet", HATCHET),
           ("ollama", OLLAMA))  # name = debian/ dir


def _say(message: str) -> None:
    print(f"debian images: {message}", file=sys.stderr, flush=True)


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _run(args: list[str], what: str, timeout: float, env: dict[str, str] | None = None,
         log: Path | None = None) -> str:
    """Runs a build step; its output (stdout + stderr) goes to `log` too. ImageError with the
    last lines of that output when it fails."""
    try:
        result = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired as error:
        output = error.stdout or ""
        output = output.decode(errors="replace") if isinstance(output, bytes) else output
        raise ImageError(f"{what} timed out after {timeout:.0f}s:\n{_tail(output)}") from None
    except FileNotFoundError:
        raise ImageError(f"{what}: {args[0]} is not installed (Debian: apt-get install "
                         f"{'debootstrap' if 'debootstrap' in args[0] else args[0]})") from None
    if log is not None:
        with log.open("a") as handle:
            handle.write(f"$ {' '.join(args)}\n{result.stdout}\n")
    if result.returncode != 0:
        raise ImageError(f"{what} failed (exit {result.returncode}):\n{_tail(result.stdout)}")
    return result.stdout


# ---- the base image: debootstrap + apt-get in a chroot + docker import ----------------------

def _recipe_files() -> list[Path]:
    return sorted(path for path in BASE_RECIPE.rglob("*") if path.is_file())


def base_key() -> str:
    """sha256 over everything the base image is made of (see the module docstring)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({
        "suite": SUITE, "mirror": MIRROR, "variant": VARIANT, "pg_major": PG_MAJOR,
        "packages": PACKAGES, "changes": IMPORT_CHANGES,
        "recipe": [inspect.getsource(_make_rootfs), inspect.getsource(_import_rootfs)],
    }, sort_keys=True).encode())
    for path in _recipe_files():
        digest.update(f"\0{path.relative_to(BASE_RECIPE).as_posix()}\0"
                      f"{path.stat().st_mode & 0o777:o}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def base_tag(key: str | None = None) -> str:
    return f"{BASE_REPO}:{key or base_key()}"


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


def _unmount_all(path: Path) -> None:
    """Unmounts everything below `path`; lazily when a plain umount fails (busy). ImageError if
    anything is still mounted afterwards, so that nobody deletes through a mount."""
    for point in _mounts_under(path):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)
    left = _mounts_under(path)
    if left:
        raise ImageError(f"could not unmount {', '.join(left)}; left {path} in place")


def _install_recipe(rootfs: Path) -> None:
    """The files of debian/base/ where apt, dpkg and invoke-rc.d look for them."""
    places = {"policy-rc.d": ("usr/sbin/policy-rc.d", 0o755),
              "apt.conf": ("etc/apt/apt.conf.d/90ct-test", 0o644),
              "dpkg-excludes": ("etc/dpkg/dpkg.cfg.d/90ct-test-excludes", 0o644),
              "setup.sh": ("tmp/ct-setup.sh", 0o755)}
    for name, (target, mode) in places.items():
        dest = rootfs / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(BASE_RECIPE / name, dest)
        os.chmod(dest, mode)


def _make_rootfs(rootfs: Path, log: Path) -> dict[str, float]:
    """debootstrap, then setup.sh in a chroot with /proc mounted (always unmounted again)."""
    seconds = {}
    started = time.monotonic()
    _run(["debootstrap", f"--variant={VARIANT}", "--components=main", SUITE, str(rootfs), MIRROR],
         "debootstrap", 1200, log=log)
    seconds["debootstrap"] = time.monotonic() - started
    if not (rootfs / "dev" / "null").is_char_device():
        raise ImageError(f"debootstrap made no device nodes in {rootfs}/dev (mknod not allowed?)")
    _install_recipe(rootfs)
    shutil.copyfile("/etc/resolv.conf", rootfs / "etc" / "resolv.conf")  # apt needs DNS
    started = time.monotonic()
    chroot_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
                  "DEBIAN_FRONTEND": "noninteractive", "DEBCONF_NONINTERACTIVE_SEEN": "true"}
    try:
        _run(["mount", "-t", "proc", "proc", str(rootfs / "proc")], "mount /proc", 30)
        (rootfs / "dev" / "pts").mkdir(exist_ok=True)
        _run(["mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=0620", "devpts",
              str(rootfs / "dev" / "pts")], "mount /dev/pts", 30)
        _run(["chroot", str(rootfs), "/bin/sh", "/tmp/ct-setup.sh", PG_MAJOR, *PACKAGES],
             "apt-get install in the chroot", 1800, env=chroot_env, log=log)
    finally:
        _unmount_all(rootfs)
    seconds["install"] = time.monotonic() - started
    (rootfs / "tmp" / "ct-setup.sh").unlink()
    for name in ("resolv.conf", "hostname"):  # docker provides both at run time
        (rootfs / "etc" / name).write_text("")
    return seconds


def _import_rootfs(rootfs: Path, tag: str, key: str, env: dict[str, str]) -> None:
    """tar the root filesystem (without the contents of /dev, /proc, /sys, /tmp) into
    `docker import`, with IMPORT_CHANGES and the key as a label."""
    changes = [*IMPORT_CHANGES, f"LABEL {HASH_LABEL}={key}"]
    args = ["docker", "import", "--message", f"debootstrap {VARIANT} {SUITE} + {' '.join(PACKAGES)}"]
    for change in changes:
        args += ["--change", change]
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs),
         "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./tmp/*",
         "--exclude=./var/tmp/*", "-c", "."],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        result = subprocess.run([*args, "-", tag], env=env, stdin=tar.stdout, capture_output=True,
                                text=True, timeout=900)
    finally:
        tar.stdout.close()
        tar_err = tar.stderr.read().decode(errors="replace")
        tar.wait()
    if tar.returncode != 0:
        raise ImageError(f"tar of {rootfs} failed:\n{_tail(tar_err)}")
    if result.returncode != 0:
        raise ImageError(f"docker import {tag} failed:\n{_tail(result.stderr)}")


def build_base(env: dict[str, str], force: bool = False) -> Built:
    """compose-tunnel-test/debian:<key>; skipped when an image with that key exists."""
    started = time.monotonic()
    key = base_key()
    tag = base_tag(key)
    existing = _inspect(tag, env)
    if existing and existing[1] == key and not force:
        return Built(tag, key, False, time.monotonic() - started, existing[2])
    if os.geteuid() != 0:
        raise ImageError("building the Debian base image needs root (debootstrap, chroot, mount)")
    if not shutil.which("debootstrap"):
        raise ImageError("debootstrap is needed (Debian: apt-get install debootstrap)")
    _say(f"building {tag} (debootstrap {SUITE} from {MIRROR}; a few minutes)")
    WORK_PARENT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ct-debian-", dir=WORK_PARENT))
    try:
        rootfs = work / "rootfs"
        seconds = _make_rootfs(rootfs, work / "build.log")
        import_started = time.monotonic()
        _import_rootfs(rootfs, tag, key, env)
        seconds["import"] = time.monotonic() - import_started
    finally:
        _unmount_all(work)  # raises (and keeps the dir) rather than rm -rf through a mount
        shutil.rmtree(work, ignore_errors=True)
    after = _inspect(tag, env)
    total = time.monotonic() - started
    _say(f"built {tag} in {total:.0f}s (" + ", ".join(f"{step} {value:.0f}s"
                                                     for step, value in seconds.items())
         + f"), {(after[2] if after else 0) / 1e6:.0f} MB")
    _remove_old_bases(tag, env)
    return Built(tag, key, True, total, after[2] if after else 0)


def _remove_old_bases(keep: str, env: dict[str, str]) -> None:
    """Untags base images of other keys (their layers go once no derived image uses them)."""
    listed = _docker(["image", "ls", BASE_REPO, "--format", "{{.Repository}}:{{.Tag}}"], env, 60)
    for tag in listed.stdout.split():
        if tag != keep:
            _docker(["image", "rm", tag], env, 60)


# ---- the derived images: docker build FROM the base -------------------------------------

def build_derived(name: str, tag: str, base: str, env: dict[str, str],
                  force: bool = False) -> Built:
    """docker build of debian/NAME/ (Dockerfile: `ARG BASE` / `FROM ${BASE}`), skipped when the
    image's content-hash label matches this context and base."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"ct-image-{name}-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(DEBIAN / name, context)
        digest = hashlib.sha256(f"{content_hash(context)}\0{base}".encode()).hexdigest()[:32]
        existing = _inspect(tag, env)
        if existing and existing[1] == digest and not force:
            return Built(tag, digest, False, time.monotonic() - started, existing[2])
        build_env = {**env, "DOCKER_BUILDKIT": "0"}  # the legacy builder needs no buildx plugin
        result = _docker(["build", "--quiet", "--pull=false", "--build-arg", f"BASE={base}",
                          "--label", f"{HASH_LABEL}={digest}", "--tag", tag, str(context)],
                         build_env, 600)
        if result.returncode != 0:
            raise ImageError(f"docker build {tag} failed:\n{_tail(result.stderr or result.stdout)}")
    after = _inspect(tag, env)
    if existing and after and existing[0] != after[0]:
        _docker(["image", "rm", existing[0]], env, 60)  # the replaced build; kept if still in use
    return Built(tag, digest, True, time.monotonic() - started, after[2] if after else 0)


def build_debian_images(env: dict[str, str], force: bool = False) -> dict[str, Built]:
    """Every Debian-based test image, by short name: debian, postgres, redis, hatchet, ollama."""
    base = build_base(env, force)
    built = {"debian": base}
    for name, tag in DERIVED:
        built[name] = build_derived(name, tag, base.tag, env, force)
    return built


if __name__ == "__main__":
    begun = time.monotonic()
    for image in build_debian_images(dict(os.environ), force="--force" in sys.argv[1:]).values():
        state = "built" if image.built else "up to date"
        print(f"{image.tag:46} {state:10} {image.size_bytes / 1e6:6.1f} MB  {image.seconds:6.1f}s")
    print(f"{'total':46} {'':10} {'':9}  {time.monotonic() - begun:6.1f}s")
