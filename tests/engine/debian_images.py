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
import sys
import tempfile
import time
from pathlib import Path

from .images import HASH_LABEL, Built, ImageError, _docker, _inspect, content_hash
from .rootfs import (MIRROR, build_root_image, chroot_ready, debootstrap, in_chroot, put, say,
                     tail)

DEBIAN = Path(__file__).parent / "debian"
BASE_RECIPE = DEBIAN / "base"

SUITE = "bookworm"
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

DERIVED = (("postgres", POSTGRES), ("redis", REDIS), ("hatchet", HATCHET),
           ("ollama", OLLAMA))  # name = debian/ dir


def _say(message: str) -> None:
    say("debian images", message)


# ---- the base image: debootstrap + apt-get in a chroot + docker import ----------------------

def _recipe_files() -> list[Path]:
    return sorted(path for path in BASE_RECIPE.rglob("*") if path.is_file())


def base_key() -> str:
    """sha256 over everything the base image is made of (see the module docstring)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({
        "suite": SUITE, "mirror": MIRROR, "variant": VARIANT, "pg_major": PG_MAJOR,
        "packages": PACKAGES, "changes": IMPORT_CHANGES,
        "recipe": [inspect.getsource(_make_rootfs)],
    }, sort_keys=True).encode())
    for path in _recipe_files():
        digest.update(f"\0{path.relative_to(BASE_RECIPE).as_posix()}\0"
                      f"{path.stat().st_mode & 0o777:o}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def base_tag(key: str | None = None) -> str:
    return f"{BASE_REPO}:{key or base_key()}"


def _install_recipe(rootfs: Path) -> None:
    """The files of debian/base/ where apt, dpkg and invoke-rc.d look for them."""
    places = {"policy-rc.d": ("usr/sbin/policy-rc.d", 0o755),
              "apt.conf": ("etc/apt/apt.conf.d/90ct-test", 0o644),
              "dpkg-excludes": ("etc/dpkg/dpkg.cfg.d/90ct-test-excludes", 0o644),
              "setup.sh": ("tmp/ct-setup.sh", 0o755)}
    for name, (target, mode) in places.items():
        put(rootfs, target, BASE_RECIPE / name, mode)


def _make_rootfs(rootfs: Path, log: Path) -> dict[str, float]:
    """debootstrap, then setup.sh in a chroot with /proc mounted (always unmounted again)."""
    seconds = {}
    started = time.monotonic()
    debootstrap(rootfs, SUITE, log, VARIANT)
    seconds["debootstrap"] = time.monotonic() - started
    _install_recipe(rootfs)
    started = time.monotonic()
    with chroot_ready(rootfs):
        in_chroot(rootfs, ["/bin/sh", "/tmp/ct-setup.sh", PG_MAJOR, *PACKAGES],
                  "apt-get install in the chroot", 1800, log)
    seconds["install"] = time.monotonic() - started
    (rootfs / "tmp" / "ct-setup.sh").unlink()
    return seconds


def build_base(env: dict[str, str], force: bool = False) -> Built:
    """compose-tunnel-test/debian:<key>; skipped when an image with that key exists."""
    key = base_key()
    tag = base_tag(key)
    built = build_root_image(tag, key, _make_rootfs, IMPORT_CHANGES,
                             f"debootstrap {VARIANT} {SUITE} + {' '.join(PACKAGES)}", env, force,
                             "debian images")
    if built.built:
        _remove_old_bases(tag, env)
    return built


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
            raise ImageError(f"docker build {tag} failed:\n{tail(result.stderr or result.stdout)}")
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
