"""The workdir is written all-or-nothing, with the modes secrets need."""

from __future__ import annotations

import stat

import pytest

from compose_tunnel.errors import UserError
from compose_tunnel.workspace import SECRET_MODE, FileContent, Workspace


def test_writes_modes_and_reports_only_changes(tmp_path):
    workspace = Workspace(tmp_path / "w")
    files = {"a.txt": FileContent("a\n"), "sub/s.env": FileContent("S=1\n", SECRET_MODE)}
    assert sorted(workspace.write(files)) == ["a.txt", "sub/s.env"]
    assert stat.S_IMODE((tmp_path / "w/sub/s.env").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "w/a.txt").stat().st_mode) == 0o644
    assert workspace.write(files) == []
    (tmp_path / "w/sub/s.env").chmod(0o644)
    assert workspace.write(files) == ["sub/s.env"]  # a widened mode is a change too


def test_a_failed_write_leaves_every_previous_file_intact(tmp_path):
    workspace = Workspace(tmp_path)
    workspace.write({"a.txt": FileContent("old a\n"), "b.txt": FileContent("old b\n")})
    (tmp_path / "c.txt").mkdir()  # a directory where a file must go: its rename fails
    (tmp_path / "c.txt" / "keep").write_text("x")
    with pytest.raises(UserError, match="cannot write"):
        workspace.write({"a.txt": FileContent("new a\n"), "b.txt": FileContent("new b\n"),
                         "c.txt": FileContent("new c\n")})
    assert (tmp_path / "a.txt").read_text() == "old a\n"
    assert (tmp_path / "b.txt").read_text() == "old b\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt", "c.txt"]
