"""Reflector's real backend image, built from its source snapshot the way upstream's
server/Dockerfile builds monadicalsas/reflector-backend, but on Debian trixie (no registry, so no
python:3.12-slim) and WITHOUT the machine-learning dependency groups.

    compose-tunnel-test/reflector-backend-no-ml-deps:<key>   debootstrap trixie + python3, ffmpeg,
                                        curl, uv, and the locked dependency set in /app/.venv
                                        (uv export of uv.lock, pip install -r); `docker import`ed
    compose-tunnel-test/reflector-backend-no-ml:1            `docker build` FROM it: Reflector's
                                        code in /app as upstream lays it out (reflector/backend/)

Left out of /app/.venv: the `silero-vad` group (torch, torchaudio, pyannote.audio, silero-vad,
librosa) and the `local` group (faster-whisper), whose wheels or model weights cannot be had
here, so in-process Whisper/pyannote inference cannot run; and `dev`, `tests`, `evaluation`,
which only development uses. Everything else (the API, alembic, Celery worker and beat, the
Hatchet worker modules) is Reflector's own code on its locked dependencies.

The deps image's key is a sha256 over the suite, mirror, packages, uv version, import changes,
this recipe's source, the recipe files and the snapshot's pyproject.toml, uv.lock and README.md:
an image with that key means the minutes of debootstrap and pip are skipped. The final image is
skipped when its content-hash label matches its build context, labels and the deps image's tag.

    python -m tests.engine.reflector_backend [--force]     builds them by hand
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
from .reflector_source import COMMIT, reflector_snapshot
from .rootfs import MIRROR, build_root_image, chroot_ready, debootstrap, in_chroot, put, say, tail

RECIPE = Path(__file__).parent / "reflector" / "backend"
DEBIAN_BASE = Path(__file__).parent / "debian" / "base"  # apt.conf, dpkg-excludes, policy-rc.d

SUITE = "trixie"
VARIANT = "minbase"  # has bash, which docker-entrypoint.sh and runserver.sh are written for
PACKAGES = ("python3", "python3-venv", "ffmpeg", "curl", "ca-certificates")
UV_VERSION = "0.13.9"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # as python:3.12-slim's
OMITTED = ("dependency groups silero-vad (torch, pyannote: no wheels here) and local "
           "(faster-whisper: no model weights here) left out, so no in-process transcription "
           "or diarization; dev, tests, evaluation left out (development only)")
TITLE = ("Reflector backend (server, Celery worker/beat, Hatchet workers) without ML groups, "
         f"built for compose-tunnel's tests from Reflector {COMMIT} on Debian {SUITE}")
IMPORT_CHANGES = (f"ENV PATH={PATH}", "ENV LANG=C.UTF-8", "WORKDIR /app", 'CMD ["bash"]',
                  f'LABEL compose-tunnel-test.omitted="{OMITTED}"',
                  f"LABEL compose-tunnel-test.reflector-commit={COMMIT}")
# upstream's COPY before `uv sync`: the dependency set is made of these
LOCK_FILES = ("pyproject.toml", "uv.lock", "README.md")
# upstream's COPYs after it (the Dockerfile in reflector/backend/ copies exactly these)
APP_FILES = ("alembic.ini", "docker-entrypoint.sh", "runserver.sh")
APP_DIRS = ("images", "migrations", "reflector")

DEPS_REPO = "compose-tunnel-test/reflector-backend-no-ml-deps"
BACKEND = "compose-tunnel-test/reflector-backend-no-ml:1"
LABELS = {"compose-tunnel-test.reflector-commit": COMMIT,
          "compose-tunnel-test.omitted": OMITTED,
          "org.opencontainers.image.title": TITLE,
          "org.opencontainers.image.source": "https://github.com/GreyhavenHQ/reflector"}

BUILD_TIMEOUT = 1800  # apt-get + ~780 MB of wheels on a slow day


def _say(message: str) -> None:
    say("reflector backend", message)


# ---- the deps image: debootstrap + apt-get + uv + pip in a chroot + docker import -----------

def _recipe_inputs(server: Path) -> list[tuple[str, Path]]:
    """Every file the deps image is made of, by a stable name."""
    files = [(f"recipe/{name}", RECIPE / name) for name in ("setup.sh",)]
    files += [(f"debian-base/{name}", DEBIAN_BASE / name)
              for name in ("apt.conf", "dpkg-excludes", "policy-rc.d")]
    files += [(f"server/{name}", server / name) for name in LOCK_FILES]
    return files


def deps_key(server: Path) -> str:
    """sha256 over everything the deps image is made of (see the module docstring)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({
        "suite": SUITE, "mirror": MIRROR, "variant": VARIANT, "packages": PACKAGES,
        "uv": UV_VERSION, "changes": IMPORT_CHANGES,
        "recipe": [inspect.getsource(_install_recipe), inspect.getsource(_make_rootfs)],
    }, sort_keys=True).encode())
    for name, path in _recipe_inputs(server):
        digest.update(f"\0{name}\0{path.stat().st_mode & 0o777:o}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _install_recipe(rootfs: Path, server: Path) -> None:
    """debian/base's apt and dpkg settings where apt, dpkg and invoke-rc.d look for them, the
    setup script, and the files the dependency set is exported from (upstream's first COPY)."""
    places = {DEBIAN_BASE / "policy-rc.d": ("usr/sbin/policy-rc.d", 0o755),
              DEBIAN_BASE / "apt.conf": ("etc/apt/apt.conf.d/90ct-test", 0o644),
              DEBIAN_BASE / "dpkg-excludes": ("etc/dpkg/dpkg.cfg.d/90ct-test-excludes", 0o644),
              RECIPE / "setup.sh": ("tmp/ct-setup.sh", 0o755)}
    for source, (target, mode) in places.items():
        put(rootfs, target, source, mode)
    for name in LOCK_FILES:
        put(rootfs, f"app/{name}", server / name, 0o644)


def host_ca_bundle() -> Path:
    """The CA bundle this machine's pip trusts: pip and PyPI in the chroot are reached through
    the same network, which may be a TLS-inspecting egress proxy only the host's bundle trusts."""
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"),
                      "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise ImageError("no CA bundle on this machine (Debian: apt-get install ca-certificates)")


def _make_rootfs(rootfs: Path, log: Path, server: Path) -> dict[str, float]:
    """debootstrap, then setup.sh in a chroot with /proc mounted (always unmounted again)."""
    seconds = {}
    started = time.monotonic()
    _say(f"debootstrap {VARIANT} {SUITE}")
    debootstrap(rootfs, SUITE, log, VARIANT)
    seconds["debootstrap"] = time.monotonic() - started
    _install_recipe(rootfs, server)
    put(rootfs, "tmp/ct-host-ca.crt", host_ca_bundle(), 0o644)  # removed by setup.sh
    started = time.monotonic()
    _say(f"apt-get install {' '.join(PACKAGES)}, uv {UV_VERSION}, pip install of uv.lock's "
         "export into /app/.venv (a few minutes)")
    with chroot_ready(rootfs):
        in_chroot(rootfs, ["/bin/sh", "/tmp/ct-setup.sh", UV_VERSION, *PACKAGES],
                  "the deps recipe (setup.sh) in the chroot", BUILD_TIMEOUT, log)
    seconds["install"] = time.monotonic() - started
    (rootfs / "tmp" / "ct-setup.sh").unlink()
    return seconds


def build_deps(server: Path, env: dict[str, str], force: bool = False) -> Built:
    """compose-tunnel-test/reflector-backend-no-ml-deps:<key>; skipped when it exists."""
    key = deps_key(server)
    tag = f"{DEPS_REPO}:{key}"
    built = build_root_image(
        tag, key, lambda rootfs, log: _make_rootfs(rootfs, log, server), IMPORT_CHANGES,
        f"debootstrap {VARIANT} {SUITE} + {' '.join(PACKAGES)} + uv {UV_VERSION} + Reflector "
        f"{COMMIT}'s locked dependencies without the silero-vad and local groups",
        env, force, "reflector backend")
    if built.built:
        _remove_old_deps(tag, env)
    return built


def _remove_old_deps(keep: str, env: dict[str, str]) -> None:
    """Untags deps images of other keys (their layers go once no backend image uses them)."""
    listed = _docker(["image", "ls", DEPS_REPO, "--format", "{{.Repository}}:{{.Tag}}"], env, 60)
    for tag in listed.stdout.split():
        if tag != keep:
            _docker(["image", "rm", tag], env, 60)


# ---- the backend image: docker build FROM the deps image ----------------------------------

def _assemble_context(context: Path, server: Path) -> None:
    """The recipe's Dockerfile and upstream's files from the snapshot, copied as they are."""
    context.mkdir()
    shutil.copyfile(RECIPE / "Dockerfile", context / "Dockerfile")
    for name in APP_FILES:
        shutil.copy2(server / name, context / name)
    for name in APP_DIRS:
        shutil.copytree(server / name, context / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def build_final(server: Path, deps: str, env: dict[str, str], force: bool = False) -> Built:
    """docker build of reflector/backend/Dockerfile FROM `deps`, skipped when the image's
    content-hash label matches the context, the labels and the deps image's tag."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ct-image-reflector-backend-") as tmp:
        context = Path(tmp) / "context"
        _assemble_context(context, server)
        digest = hashlib.sha256(f"{content_hash(context)}\0{deps}\0"
                                f"{json.dumps(LABELS, sort_keys=True)}".encode()).hexdigest()[:32]
        existing = _inspect(BACKEND, env)
        if existing and existing[1] == digest and not force:
            return Built(BACKEND, digest, False, time.monotonic() - started, existing[2])
        _say(f"docker build {BACKEND} FROM {deps}")
        labels = [arg for name, value in {**LABELS, HASH_LABEL: digest}.items()
                  for arg in ("--label", f"{name}={value}")]
        build_env = {**env, "DOCKER_BUILDKIT": "0"}  # the legacy builder needs no buildx plugin
        result = _docker(["build", "--pull=false", "--build-arg", f"DEPS={deps}", *labels,
                          "--tag", BACKEND, str(context)], build_env, 900)
        if result.returncode != 0:
            raise ImageError(f"docker build {BACKEND} failed:\n"
                             f"{tail(result.stdout + result.stderr)}")
    after = _inspect(BACKEND, env)
    if existing and after and existing[0] != after[0]:
        _docker(["image", "rm", existing[0]], env, 60)  # the replaced build; kept if still in use
    return Built(BACKEND, digest, True, time.monotonic() - started, after[2] if after else 0)


def build_backend_images(env: dict[str, str], force: bool = False) -> dict[str, Built]:
    """The deps image and the backend image, by short name: deps, backend."""
    server = reflector_snapshot().server
    deps = build_deps(server, env, force)
    return {"deps": deps, "backend": build_final(server, deps.tag, env, force)}


def build_backend_image(env: dict[str, str], force: bool = False) -> Built:
    """compose-tunnel-test/reflector-backend-no-ml:1 (and the deps image under it); cached."""
    return build_backend_images(env, force)["backend"]


if __name__ == "__main__":
    begun = time.monotonic()
    try:
        built_images = build_backend_images(dict(os.environ), force="--force" in sys.argv[1:])
    except ImageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    for image in built_images.values():
        state = "built" if image.built else "up to date"
        print(f"{image.tag:70} {state:10} {image.size_bytes / 1e6:7.1f} MB  "
              f"{image.seconds:6.1f}s")
    print(f"{'total':70} {'':10} {'':10}  {time.monotonic() - begun:6.1f}s")
