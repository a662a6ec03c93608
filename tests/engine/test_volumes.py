"""Postgres's volume, new or not, on a real engine.

New: Postgres's init script (postgres-init/hatchet.sql) creates Hatchet's database, which the
database step then finds. Existing without that database (an install older than the script, or
one that lost it): the step creates it. Either way Hatchet starts after the step, as soon as
`up` has seen Postgres pass its own check.
"""

from __future__ import annotations

import pytest

from engine.test_stack import TEST_PROFILES, tool

pytestmark = pytest.mark.engine
PROJECT = "ct-test-volumes"


def test_hatchet_database_from_the_init_script_on_a_new_volume_from_the_step_on_an_old_one(
        engine, standin_images, debian_images, docker_config, tmp_path):
    work = tmp_path / ".compose-tunnel"
    try:
        first = tool("up", "--cpu", "--lan-ip", "192.0.2.1", "--profiles-dir", str(TEST_PROFILES),
                     "--project-name", PROJECT, "--publish-ip", "127.0.0.1", "--wait-timeout", "120",
                     cwd=tmp_path)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "starting redis alongside the bootstraps" in first.stdout
        assert "hatchet database: database hatchet created" not in first.stdout  # the script did
        assert "hatchet token: starting hatchet" in first.stdout
        assert "hatchet token: client token created for the default tenant" in first.stdout

        assert tool("down", cwd=tmp_path).returncode == 0  # the volumes stay
        engine.compose(PROJECT, work / "compose.yml", "--project-directory", str(work), "up", "--detach",
                       "--wait", "postgres")
        engine.docker("exec", f"{PROJECT}-postgres-1", "psql", "-U", "reflector", "-d", "reflector",
                      "-c", "DROP DATABASE hatchet")

        again = tool("up", cwd=tmp_path)
        assert again.returncode == 0, again.stdout + again.stderr
        out = again.stdout
        assert "starting redis alongside the bootstraps" in out
        # Hatchet made a new tenant in the new database: the stored token was for the old one.
        order = ["hatchet database: database hatchet created", "hatchet token: starting hatchet",
                 "hatchet token: client token replaced: the stored one was for another tenant"]
        assert all(line in out for line in order), out
        assert [out.index(line) for line in order] == sorted(out.index(line) for line in order), out
    finally:
        tool("down", "--volumes", cwd=tmp_path)
