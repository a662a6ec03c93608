"""Reflector's own source (MIT), the snapshot the real app's test images are built from.

It is test data kept beside the project, never in it: `../shared/reflector/reflector-*.tar.gz`
from the repository's root, or the file COMPOSE_TUNNEL_REFLECTOR_SNAPSHOT names. Its sha256 is
checked, and it is unpacked once per hash under /var/tmp (read-only use: recipes copy from it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .images import ImageError

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "reflector"
SNAPSHOT_VARIABLE = "COMPOSE_TUNNEL_REFLECTOR_SNAPSHOT"
# The snapshot's README gives its commit and hash; a different file is a different snapshot.
COMMIT = "52888f6"
SHA256 = "992efc41da5944f313d0f23e678e01cc67bf9b33e16ce4c7749c56c6fa971f61"
UNPACK_PARENT = Path("/var/tmp")


@dataclass(frozen=True)
class Snapshot:
    archive: Path
    sha256: str
    tree: Path  # the unpacked source: server/, www/, LICENSE, ...

    @property
    def server(self) -> Path:
        return self.tree / "server"

    @property
    def www(self) -> Path:
        return self.tree / "www"


def snapshot_path() -> Path:
    named = os.environ.get(SNAPSHOT_VARIABLE)
    if named:
        return Path(named)
    return SHARED / f"reflector-{COMMIT}.tar.gz"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def reflector_snapshot() -> Snapshot:
    """The checked, unpacked snapshot. ImageError when it is missing or not the one expected."""
    archive = snapshot_path()
    if not archive.is_file():
        raise ImageError(f"Reflector's source snapshot is missing: {archive} (set "
                         f"{SNAPSHOT_VARIABLE} to reflector-{COMMIT}.tar.gz)")
    digest = _sha256(archive)
    if digest != SHA256 and not os.environ.get(SNAPSHOT_VARIABLE):
        raise ImageError(f"{archive} has sha256 {digest}, not the pinned snapshot's {SHA256}")
    tree = UNPACK_PARENT / f"ct-reflector-{digest[:16]}"
    if not (tree / ".complete").exists():
        UNPACK_PARENT.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="ct-reflector-unpack-", dir=UNPACK_PARENT))
        try:
            with tarfile.open(archive) as bundle:
                bundle.extractall(staging, filter="data")
            (staging / ".complete").write_text(digest + "\n")
            shutil.rmtree(tree, ignore_errors=True)
            staging.rename(tree)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if not (tree / "server" / "uv.lock").is_file() or not (tree / "www" / "package.json").is_file():
        raise ImageError(f"{archive} holds no server/uv.lock or www/package.json")
    return Snapshot(archive, digest, tree)
