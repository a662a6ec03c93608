"""`backup`: one archive of a running install, taken while it serves.

Each database is dumped by pg_dump in its custom format inside the running Postgres container
(a consistent snapshot of each database, the server keeps serving); Garage's metadata comes
from its own snapshot (`garage meta snapshot`, see garagesnapshot.py) and its blocks right
after; the server's and Hatchet's volumes as `docker cp` streams them; the workdir's saved
configuration, secrets and applied state as they are. No service is stopped.

The archive is written under a temporary name in the target's directory, mode 0600, synced,
and renamed when complete: an interrupted backup leaves no file that looks whole.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .. import __version__, backupset
from ..archive import FORMAT_VERSION, ArchiveWriter, Manifest, human_size
from ..dockerstreams import copy_out, exec_out
from ..errors import EngineError, UserError
from ..services import POSTGRES_USER
from ..workspace import Workspace, fsync_dir
from .stacks import last_applied, stack_for

Say = Callable[[str], None]
GARAGE_BINARY = "/garage"


@dataclass
class BackupResult:
    path: Path
    manifest: Manifest
    seconds: float
    size: int
    sealed: bool


def default_output(project_name: str, sealed: bool) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(f"reflector-backup-{project_name}-{stamp}.tar" + (".sealed" if sealed else ""))


def backup(workspace: Workspace, output: Path | None, *, say: Say,
           passphrase: bytes | None = None) -> BackupResult:
    began = time.monotonic()
    applied = last_applied(workspace, nothing=": nothing to back up", swarm=(
        "backup works on a docker compose project; this one runs on the swarm",
        "take the volumes on the node labelled compose-tunnel.data"))
    stack = stack_for(workspace, applied.project_name, applied=True)
    # No separate engine check (two docker calls): `compose ps` fails in one line when Docker
    # does not answer.
    running = {s.service: s for s in stack.states() if s.status == "running"}
    volumes = backupset.volumes_for(applied.profiles)
    needed = sorted({backupset.POSTGRES_SERVICE} | {v.service for v in volumes})
    missing = [service for service in needed if service not in running]
    if missing:
        raise UserError(f"{applied.project_name}: {', '.join(missing)} not running: an online "
                        "backup reads them through their containers",
                        hint="`compose-tunnel up` starts them, then run the backup again")
    docker = [str(part) for part in stack.client.client_config.docker_cmd]
    container = {service: running[service].container for service in needed}
    output = Path(output) if output else default_output(applied.project_name, passphrase is not None)
    target = output.absolute()
    if target.is_dir():
        raise UserError(f"-o {output} is a directory", hint="give a file name, e.g. -o backup.tar")
    manifest = Manifest(FORMAT_VERSION, __version__, datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        applied.project_name, list(applied.profiles))
    temps: list[Path] = []
    try:
        plain = _temp(target, temps)
        with open(plain, "w+b", buffering=1 << 20) as handle:
            writer = ArchiveWriter(handle, manifest, say)
            _take(writer, workspace, docker, container, volumes, say)
            writer.finish()
        if passphrase is not None:
            from ..sealing import seal

            sealed = _temp(target, temps)
            say("sealing the archive with the passphrase")
            with open(plain, "rb") as source, open(sealed, "wb") as sink:
                seal(source, sink, passphrase)
                sink.flush()
                os.fsync(sink.fileno())
            os.unlink(plain)
            plain = sealed
        os.replace(plain, target)
        fsync_dir(target.parent)
    except OSError as error:
        raise UserError(f"cannot write the backup {output}: {error.strerror or error}",
                        hint="check the free space and permissions of its directory") from None
    finally:
        for temp in temps:
            if temp.exists() and temp != target:
                temp.unlink()
    return BackupResult(output, manifest, time.monotonic() - began, target.stat().st_size,
                        passphrase is not None)


def _temp(target: Path, temps: list[Path]) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)  # mkstemp makes it 0600
    temps.append(Path(name))
    return Path(name)


def _take(writer: ArchiveWriter, workspace: Workspace, docker: list[str], container: dict[str, str],
          volumes: list[backupset.VolumeCopy], say: Say) -> None:
    steps = len(backupset.DATABASES) + len(volumes) + 1
    step = 0

    def announce(what: str) -> float:
        nonlocal step
        step += 1
        say(f"[{step}/{steps}] {what}")
        return time.monotonic()

    def done(name: str, started: float) -> None:
        member = writer.manifest.member(name)
        size = human_size(member.size) if member else "?"
        say(f"      {name}: {size} in {time.monotonic() - started:.1f}s")

    announce("the workdir's configuration, secrets and applied state")
    for name, what in backupset.WORKDIR_FILES:
        text = workspace.read(name)
        if text is not None:
            writer.add_bytes(backupset.workdir_member(name), "workdir", what, text.encode())
    for database in backupset.DATABASES:
        started = announce(f"database {database.name} (pg_dump, custom format)")
        with writer.member(database.member, "database", f"pg_dump -Fc of the {database.name} database") as sink:
            exec_out(docker, container[backupset.POSTGRES_SERVICE],
                     ["pg_dump", "-U", POSTGRES_USER, "-Fc", "-d", database.name], sink.write,
                     f"pg_dump of {database.name}")
        done(database.member, started)
    for volume in volumes:
        started = announce(f"volume {volume.volume} ({volume.what})")
        if volume is backupset.GARAGE_META:
            snapshot = _garage_metadata(writer, docker, container[volume.service], volume)
            writer.manifest.notes.append(
                f"garage: metadata from its snapshot {snapshot} (`garage meta snapshot`) taken while "
                "it ran, data blocks copied after it; no service was stopped")
        else:
            with writer.member(volume.member, "volume", volume.what) as sink:
                copy_out(docker, container[volume.service], volume.path, sink.write,
                         f"copying {volume.volume} out of {volume.service}")
        done(volume.member, started)


def _garage_metadata(writer: ArchiveWriter, docker: list[str], container: str,
                     volume: backupset.VolumeCopy) -> str:
    """Garage's own consistent snapshot of its metadata, in place of its live database."""
    from ..garagesnapshot import NoSnapshot, consistent_metadata

    exec_out(docker, container, [GARAGE_BINARY, "meta", "snapshot"], lambda _data: None,
             "garage meta snapshot")
    with tempfile.TemporaryFile() as copied:
        copy_out(docker, container, volume.path, copied.write, "copying Garage's metadata")
        copied.seek(0)
        with tarfile.open(fileobj=copied, mode="r:") as source, \
                writer.member(volume.member, "garage-metadata", volume.what) as sink:
            try:
                return consistent_metadata(source, sink)  # type: ignore[arg-type]
            except NoSnapshot:
                raise EngineError("garage meta snapshot wrote no snapshot under "
                                  f"{volume.path}/snapshots",
                                  hint="Garage 1.0 or newer takes metadata snapshots; "
                                       "`compose-tunnel logs garage` says more") from None
