"""The backup archive without Docker: its format, its checks, sealing, Garage's snapshot in
place of the live database, and restore's refusals (one line, exit 2, nothing changed)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from compose_tunnel.archive import (FORMAT_VERSION, ArchiveWriter, Manifest, check_archive,
                                    open_member)
from compose_tunnel.errors import UserError
from compose_tunnel.garagesnapshot import NoSnapshot, consistent_metadata
from compose_tunnel.sealing import is_sealed, seal, unseal

SETTINGS = '[settings]\nproject_name = "reflector"\n'
SECRETS = 'postgres_password = "p"\n'


def write_archive(path: Path, version: int = FORMAT_VERSION, big: int = 3_000_000) -> Manifest:
    manifest = Manifest(version, "0.1.0", "2026-12-04T00:00:00+00:00", "reflector", ["cpu", "garage"])
    with open(path, "w+b") as handle:
        writer = ArchiveWriter(handle, manifest)
        writer.add_bytes("workdir/config.toml", "workdir", "the saved configuration", SETTINGS.encode())
        writer.add_bytes("workdir/secrets.toml", "workdir", "the secrets", SECRETS.encode())
        with writer.member("postgres/reflector.dump", "database", "pg_dump") as sink:
            sink.copy_from(io.BytesIO(os.urandom(big)))  # streamed: its size is known only at the end
        return writer.finish()


def test_an_archive_is_a_tar_with_format_first_and_the_manifest_last(tmp_path):
    path = tmp_path / "a.tar"
    written = write_archive(path)
    with tarfile.open(path) as tar:
        names = tar.getnames()
        assert tar.getmember("postgres/reflector.dump").size == 3_000_000
    assert names == ["FORMAT", "workdir/config.toml", "workdir/secrets.toml", "postgres/reflector.dump",
                     "manifest.json"]
    checked = check_archive(path)
    assert checked == written
    assert [m.kind for m in checked.members] == ["workdir", "workdir", "database"]
    with open_member(path, "workdir/config.toml") as handle:
        assert handle.read().decode() == SETTINGS


def test_a_newer_format_is_refused(tmp_path):
    path = tmp_path / "a.tar"
    write_archive(path, version=FORMAT_VERSION + 1)
    with pytest.raises(UserError, match="format 2 is newer than this compose-tunnel reads"):
        check_archive(path)


@pytest.mark.parametrize("cut", [100, 1_000_000, -1100])
def test_a_truncated_archive_is_refused(tmp_path, cut):
    path = tmp_path / "a.tar"
    write_archive(path)
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut > 0 else data[:cut])
    with pytest.raises(UserError, match="truncated|not a compose-tunnel backup"):
        check_archive(path)


def test_an_altered_member_is_refused(tmp_path):
    path = tmp_path / "a.tar"
    write_archive(path)
    data = bytearray(path.read_bytes())
    at = data.index(b"postgres_password")
    data[at] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="workdir/secrets.toml does not match its sha256"):
        check_archive(path)


def test_sealing_round_trips_and_refuses_a_wrong_passphrase_or_a_truncated_file(tmp_path):
    plain = tmp_path / "a.tar"
    write_archive(plain)
    sealed = tmp_path / "a.tar.sealed"
    with open(plain, "rb") as source, open(sealed, "wb") as target:
        seal(source, target, b"correct horse battery")
    assert is_sealed(sealed) and not is_sealed(plain)
    assert b"postgres_password" not in sealed.read_bytes()
    out = io.BytesIO()
    with open(sealed, "rb") as source:
        unseal(sealed, source, out, b"correct horse battery")
    assert out.getvalue() == plain.read_bytes()
    with open(sealed, "rb") as source, pytest.raises(UserError, match="wrong passphrase"):
        unseal(sealed, source, io.BytesIO(), b"wrong horse battery")
    cut = tmp_path / "cut.sealed"
    cut.write_bytes(sealed.read_bytes()[:1 << 20])  # whole chunks, the FINAL one missing
    with open(cut, "rb") as source, pytest.raises(UserError, match="truncated|altered"):
        unseal(cut, source, io.BytesIO(), b"correct horse battery")


def garage_meta_tar(snapshots: list[str], sqlite: bool = False) -> io.BytesIO:
    """What `docker cp garage:/var/lib/garage/meta -` gives: the top entry `meta`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        def add(name: str, data: bytes | None = None) -> None:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        add("meta")
        add("meta/node_key", b"KEY")
        add("meta/cluster_layout", b"LAYOUT")
        if sqlite:
            add("meta/db.sqlite", b"LIVE")
            add("meta/db.sqlite-wal", b"WAL")
        else:
            add("meta/db.lmdb")
            add("meta/db.lmdb/data.mdb", b"LIVE")
        add("meta/snapshots")
        for name in snapshots:
            if sqlite:
                add(f"meta/snapshots/{name}", f"SNAP {name}".encode())
            else:
                add(f"meta/snapshots/{name}")
                add(f"meta/snapshots/{name}/data.mdb", f"SNAP {name}".encode())
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize("sqlite", [False, True])
def test_garage_metadata_holds_the_newest_snapshot_in_place_of_the_live_database(sqlite):
    out = io.BytesIO()
    with tarfile.open(fileobj=garage_meta_tar(["2026-12-04T10:00:00Z", "2026-12-04T11:00:00Z"], sqlite)) as source:
        assert consistent_metadata(source, out) == "2026-12-04T11:00:00Z"
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    database = "meta/db.sqlite" if sqlite else "meta/db.lmdb/data.mdb"
    assert files == {"meta/node_key": b"KEY", "meta/cluster_layout": b"LAYOUT",
                     database: b"SNAP 2026-12-04T11:00:00Z"}


def test_garage_metadata_without_a_snapshot_is_an_error():
    with tarfile.open(fileobj=garage_meta_tar([])) as source, pytest.raises(NoSnapshot):
        consistent_metadata(source, io.BytesIO())


def restore(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    return subprocess.run([sys.executable, "-m", "compose_tunnel", "restore", *args, "--workdir",
                           str(tmp_path / "work")], cwd=tmp_path, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("damage", ["newer", "truncated", "altered", "sealed without passphrase",
                                    "wrong passphrase", "not an archive"])
def test_restore_refuses_a_bad_archive_in_one_line_and_changes_nothing(tmp_path, damage):
    path = tmp_path / "a.tar"
    write_archive(path, version=FORMAT_VERSION + (damage == "newer"))
    args = [str(path)]
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:2_000_000])
    elif damage == "altered":
        data = bytearray(path.read_bytes())
        data[data.index(b"reflector\"")] ^= 1
        path.write_bytes(bytes(data))
    elif damage == "not an archive":
        path.write_text("hello\n")
    elif "passphrase" in damage:
        sealed = tmp_path / "a.sealed"
        with open(path, "rb") as source, open(sealed, "wb") as target:
            seal(source, target, b"the right passphrase")
        args = [str(sealed)]
        if damage == "wrong passphrase":
            (tmp_path / "pass").write_text("not the right one\n")
            args += ["--passphrase-file", str(tmp_path / "pass")]
    result = restore(tmp_path, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("compose-tunnel: error: "), result.stderr
    assert "nothing was changed" in lines[0] or "no such file" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "work").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no scratch left


@pytest.mark.parametrize("command", [["up", "--cpu", "--lan-ip", "192.0.2.1"], ["rebuild"]])
def test_up_and_rebuild_refuse_a_workdir_whose_restore_did_not_finish(tmp_path, command):
    from compose_tunnel.restoring import MARKER, marker_file

    work = tmp_path / "work"
    work.mkdir()
    (work / MARKER).write_text(marker_file("/backups/a.tar", "0" * 64, "reflector").text)
    (work / "config.toml").write_text(SETTINGS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    result = subprocess.run([sys.executable, "-m", "compose_tunnel", *command, "--workdir", str(work)],
                            cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        f"compose-tunnel: error: a restore into {work} did not finish (from /backups/a.tar): its "
        "project would start with part of its data (hint: run `compose-tunnel restore /backups/a.tar` "
        "again to complete it)")
    assert not (work / "compose.yml").exists()


def test_restore_refuses_a_configuration_that_cannot_render_here_before_changing_anything(tmp_path):
    path = tmp_path / "a.tar"
    manifest = Manifest(FORMAT_VERSION, "0.1.0", "2026-12-04T00:00:00+00:00", "reflector", ["cpu"])
    with open(path, "w+b") as handle:
        writer = ArchiveWriter(handle, manifest)
        writer.add_bytes("workdir/config.toml", "workdir", "the saved configuration",
                         b'[settings]\nproject_name = "reflector"\nprofiles_dirs = ["/nowhere/profiles"]\n')
        writer.add_bytes("workdir/secrets.toml", "workdir", "the secrets", SECRETS.encode())
        writer.finish()
    result = restore(tmp_path, str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "/nowhere/profiles" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "work").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
