"""The backup archive: one tar file, a manifest, a checksum for every member.

Layout: `FORMAT` first (so an archive of a newer format is refused before anything else is
read), the members in the order they were taken, `manifest.json` last (format version, the
compose-tunnel that wrote it, and for each member what it is, its size and its sha256). Any
tar tool lists and extracts it.

Members are streamed from `docker exec`/`docker cp` without knowing their size first: each
one's header is written as a placeholder and filled in once the member ends (the archive file
is seekable, and a GNU header of a short name is one 512-byte block whatever the size).
Checking reads every member again and compares it with the manifest, before a restore touches
anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import IO, Any, BinaryIO, Callable, Iterator

from .errors import UserError

FORMAT = "FORMAT"
MANIFEST = "manifest.json"
FORMAT_VERSION = 1
FORMAT_TEXT = "compose-tunnel backup, format {version}\n"
BLOCK = tarfile.BLOCKSIZE
CHUNK = 1 << 20
PROGRESS_EVERY_SECONDS = 2.0
HOLDS_SECRETS = ("this archive holds the install's secrets (database password, Garage key, "
                 "Hatchet token, SECRET_KEY, admin hash): keep it private")

Say = Callable[[str], None]


@dataclass(frozen=True)
class Member:
    name: str  # its path in the archive
    kind: str  # database, volume, garage-metadata, workdir
    what: str  # in words, for a person reading the manifest
    size: int
    sha256: str


@dataclass
class Manifest:
    format: int
    tool_version: str
    created: str  # UTC, ISO 8601
    project_name: str
    profiles: list[str]
    members: list[Member] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how it was taken (Garage's snapshot, ...)

    def to_json(self) -> str:
        data = asdict(self)
        data["secrets"] = HOLDS_SECRETS
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        data = json.loads(text)
        members = [Member(**m) for m in data.pop("members")]
        data.pop("secrets", None)
        return cls(**data, members=members)

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    def of_kind(self, kind: str) -> list[Member]:
        return [m for m in self.members if m.kind == kind]


def human_size(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


class _Hasher:
    """sha256 on a thread of its own: hashlib lets go of the GIL on large buffers, so a
    member's hash is computed while its next chunk is copied, not after it."""

    def __init__(self) -> None:
        import queue
        import threading

        self._digest = hashlib.sha256()
        self._chunks: "queue.Queue[bytes | None]" = queue.Queue(maxsize=64)
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for chunk in iter(self._chunks.get, None):
            self._digest.update(chunk)

    def update(self, data: bytes) -> None:
        self._chunks.put(bytes(data))

    def hexdigest(self) -> str:
        self._chunks.put(None)
        self._thread.join()
        return self._digest.hexdigest()


class _Sink:
    """Where one member's bytes go: counted, hashed, and shown as progress."""

    def __init__(self, handle: BinaryIO, label: str, say: Say | None) -> None:
        self.handle, self.label, self.say = handle, label, say
        self.size = 0
        self.digest = _Hasher()
        self._shown = time.monotonic()

    def write(self, data: bytes) -> int:
        self.handle.write(data)
        self.digest.update(data)
        self.size += len(data)
        if self.say and time.monotonic() - self._shown >= PROGRESS_EVERY_SECONDS:
            self.say(f"  {self.label}: {human_size(self.size)}")
            self._shown = time.monotonic()
        return len(data)

    def copy_from(self, source: IO[bytes]) -> None:
        read = getattr(source, "read1", source.read)
        for chunk in iter(lambda: read(CHUNK), b""):
            self.write(chunk)


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(time.time())
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    if len(header) != BLOCK:
        raise ValueError(f"archive member name too long for one header block: {name}")
    return header


class ArchiveWriter:
    """Writes members one after another into a seekable, already open file."""

    def __init__(self, handle: BinaryIO, manifest: Manifest, say: Say | None = None) -> None:
        self.handle, self.manifest, self.say = handle, manifest, say
        self.add_bytes(FORMAT, "format", "the archive's format",
                       FORMAT_TEXT.format(version=manifest.format).encode(), record=False)

    @contextmanager
    def member(self, name: str, kind: str, what: str, record: bool = True) -> Iterator[_Sink]:
        """A member whose bytes the caller writes into the sink yielded."""
        start = self.handle.tell()
        self.handle.write(_header(name, 0))
        sink = _Sink(self.handle, what, self.say)
        yield sink
        padding = -sink.size % BLOCK
        self.handle.write(b"\0" * padding)
        end = self.handle.tell()
        self.handle.seek(start)
        self.handle.write(_header(name, sink.size))
        self.handle.seek(end)
        if record:
            self.manifest.members.append(Member(name, kind, what, sink.size, sink.digest.hexdigest()))

    def add_bytes(self, name: str, kind: str, what: str, data: bytes, record: bool = True) -> None:
        with self.member(name, kind, what, record) as sink:
            sink.write(data)

    def finish(self) -> Manifest:
        """The manifest last, then tar's end (two zero blocks); flushed and synced."""
        self.add_bytes(MANIFEST, "manifest", "this list", self.manifest.to_json().encode(), record=False)
        self.handle.write(b"\0" * (2 * BLOCK))
        self.handle.flush()
        os.fsync(self.handle.fileno())
        return self.manifest


def _refuse(path: Any, why: str, hint: str = "use another backup, or make a new one with "
            "`compose-tunnel backup`") -> UserError:
    return UserError(f"{path}: {why}; nothing was changed", hint=hint)


def check_archive(path: Any, say: Say | None = None) -> Manifest:
    """The archive's manifest, once every member is read and matches it. Refuses, as one
    UserError each, a file that is no backup, one of a newer format, a truncated one and an
    altered one."""
    try:
        tar = tarfile.open(path, "r:")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file", hint="give the path of a file `compose-tunnel backup` wrote") from None
    except (tarfile.ReadError, OSError) as error:
        raise _refuse(path, f"not a compose-tunnel backup ({error})") from None
    with tar:
        try:
            return _check(path, tar, say)
        except (tarfile.ReadError, EOFError, OSError) as error:
            raise _refuse(path, f"truncated or damaged archive ({error})") from None


def _check(path: Any, tar: tarfile.TarFile, say: Say | None) -> Manifest:
    first = tar.next()
    if first is None or first.name != FORMAT:
        raise _refuse(path, "not a compose-tunnel backup (no FORMAT member first)")
    text = tar.extractfile(first).read().decode(errors="replace")  # type: ignore[union-attr]
    try:
        version = int(text.strip().rsplit(" ", 1)[-1])
    except ValueError:
        raise _refuse(path, f"unreadable format line {text.strip()!r}") from None
    if version > FORMAT_VERSION:
        raise _refuse(path, f"archive format {version} is newer than this compose-tunnel reads "
                            f"({FORMAT_VERSION})", hint="restore it with the compose-tunnel that wrote it, or a newer one")
    seen: dict[str, tuple[int, str]] = {}
    manifest_text = None
    for info in tar:
        if info is first:
            continue
        handle = tar.extractfile(info)
        if handle is None:
            raise _refuse(path, f"member {info.name} is not a file: altered archive")
        if info.name == MANIFEST:
            manifest_text = handle.read().decode()
            continue
        if manifest_text is not None:
            raise _refuse(path, f"member {info.name} after the manifest: altered archive")
        digest = hashlib.sha256()
        size = 0
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
        if size != info.size:
            raise _refuse(path, f"truncated archive: member {info.name} ends early")
        seen[info.name] = (size, digest.hexdigest())
        if say:
            say(f"  checked {info.name} ({human_size(size)})")
    if manifest_text is None:
        raise _refuse(path, "truncated archive: its manifest (the last member) is missing")
    try:
        manifest = Manifest.from_json(manifest_text)
    except (ValueError, TypeError, KeyError) as error:
        raise _refuse(path, f"its manifest is not readable ({error}): altered archive") from None
    if manifest.format > FORMAT_VERSION:
        raise _refuse(path, f"archive format {manifest.format} is newer than this compose-tunnel "
                            f"reads ({FORMAT_VERSION})", hint="restore it with a newer compose-tunnel")
    listed = {m.name: (m.size, m.sha256) for m in manifest.members}
    for name in sorted(set(listed) | set(seen)):
        if name not in seen:
            raise _refuse(path, f"truncated archive: member {name} of the manifest is missing")
        if name not in listed:
            raise _refuse(path, f"member {name} is not in the manifest: altered archive")
        if listed[name] != seen[name]:
            raise _refuse(path, f"member {name} does not match its sha256 in the manifest: "
                                "altered or damaged archive")
    return manifest


@contextmanager
def open_member(path: Any, name: str) -> Iterator[IO[bytes]]:
    """One member of a checked archive, to read."""
    with tarfile.open(path, "r:") as tar:
        handle = tar.extractfile(tar.getmember(name))
        assert handle is not None
        yield handle
