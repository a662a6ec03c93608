"""Garage's metadata, consistent while Garage runs: from its own snapshot, not the live db.

Garage 1.x keeps its metadata in one database under metadata_dir (`db.lmdb/`, a directory,
with the default LMDB engine; `db.sqlite` with SQLite), which it writes all the time: a copy
of the live file may be torn. `garage meta snapshot` asks the node for a consistent copy, which
it writes to `<metadata_dir>/snapshots/<UTC time>` (a directory for LMDB, a file for SQLite)
and keeps the two newest. Garage's recovery guide restores a snapshot by putting it in place
of the database and starting the node. So the archive holds the metadata directory as copied
(node key, cluster layout, peer list) with the live database and the snapshots left out, and
the newest snapshot put where the database goes: restoring it is untarring it.

The data directory needs nothing of the kind: its blocks are immutable files named by their
hash, and Garage deletes a block only some time (10 minutes in 1.x, BLOCK_GC_DELAY) after the
last reference to it goes, so a copy taken right after the snapshot holds every block the
snapshot refers to.
"""

from __future__ import annotations

import tarfile
from typing import IO

DATABASES = {"lmdb": "db.lmdb", "sqlite": "db.sqlite"}
SNAPSHOTS = "snapshots"


class NoSnapshot(Exception):
    """The metadata copy holds no snapshot (the snapshot command did not write one)."""


def _parts(name: str) -> list[str]:
    return [part for part in name.split("/") if part not in ("", ".")]


def newest_snapshot(names: list[str]) -> str | None:
    """The newest entry of `<top>/snapshots/` (their names are UTC times, which sort)."""
    found = {parts[2] for parts in map(_parts, names) if len(parts) >= 3 and parts[1] == SNAPSHOTS}
    return max(found) if found else None


def _is_live_database(parts: list[str]) -> bool:
    if len(parts) < 2:
        return False
    name = parts[1]
    return name in DATABASES.values() or name.startswith("db.sqlite-")  # -wal, -shm


def consistent_metadata(source: tarfile.TarFile, target: IO[bytes]) -> str:
    """Copy the metadata tar `source` (as `docker cp garage:/var/lib/garage/meta -` gives it,
    read from a seekable file) into `target` as a tar stream, its live database replaced by its
    newest snapshot. Returns the snapshot's name."""
    members = source.getmembers()
    snapshot = newest_snapshot([m.name for m in members])
    if snapshot is None:
        raise NoSnapshot("no snapshot in the metadata directory")
    top = _parts(members[0].name)[0]
    is_dir = any(_parts(m.name)[1:3] == [SNAPSHOTS, snapshot] and m.isdir() for m in members)
    database = DATABASES["lmdb" if is_dir else "sqlite"]
    with tarfile.open(fileobj=target, mode="w|", format=tarfile.PAX_FORMAT) as out:
        for member in members:
            parts = _parts(member.name)
            if len(parts) >= 3 and parts[1] == SNAPSHOTS and parts[2] == snapshot:
                member.name = "/".join([top, database, *parts[3:]])
            elif _is_live_database(parts) or (len(parts) >= 2 and parts[1] == SNAPSHOTS):
                continue
            out.addfile(member, source.extractfile(member) if member.isreg() else None)
    return snapshot
