"""Taking over an install made by Reflector's own setup, on a real engine with real Postgres.

The volume is initialised the way upstream's docker-compose.selfhosted.yml does it: user,
password and database `reflector`, init-hatchet-db.sql creating `hatchet`, max_connections 200.
"""

from __future__ import annotations

import time
import uuid

import pytest
import yaml

from engine.test_stack import TEST_PROFILES, tool

pytestmark = pytest.mark.engine


def upstream_postgres(postgres_image: str, clone) -> dict:
    return {"services": {"postgres": {
        "image": postgres_image, "pull_policy": "never",
        "command": ["postgres", "-c", "max_connections=200"],
        "environment": {"POSTGRES_USER": "reflector", "POSTGRES_PASSWORD": "reflector",
                        "POSTGRES_DB": "reflector"},
        "volumes": ["postgres_data:/var/lib/postgresql/data",
                    f"{clone}/server/docker/init-hatchet-db.sql:/docker-entrypoint-initdb.d/init-hatchet-db.sql:ro"],
        "healthcheck": {"test": ["CMD-SHELL", "pg_isready -U reflector"], "interval": "1s", "retries": 60},
    }}, "volumes": {"postgres_data": {}}}


def test_an_upstream_install_is_refused_then_adopted_with_its_data(engine, standin_images, debian_images,
                                                                    clean_projects, tmp_path):
    project = f"ct-test-adopt-{uuid.uuid4().hex[:6]}"
    clone = tmp_path / project  # upstream's project is the clone's folder name
    (clone / "server" / "docker").mkdir(parents=True)
    (clone / "www").mkdir()
    (clone / "server" / "docker" / "init-hatchet-db.sql").write_text("CREATE DATABASE hatchet;\n")
    (clone / "server" / ".env").write_text(
        "DATABASE_URL=postgresql+asyncpg://reflector:reflector@postgres:5432/reflector\n"
        "SECRET_KEY=upstream-secret\nAUTH_BACKEND=none\nPUBLIC_MODE=true\n")
    (clone / "www" / ".env").write_text("NEXTAUTH_SECRET=upstream-nextauth\n")
    upstream = clone / "docker-compose.selfhosted.yml"
    upstream.write_text(yaml.safe_dump(upstream_postgres(debian_images["postgres"], clone)))
    engine.compose(project, upstream, "up", "-d", "--wait", "postgres", timeout=120)
    # pg_isready also answers the server the image's initialisation runs and then restarts:
    # the first psql may fall in that gap, as it would against upstream's own healthcheck.
    for attempt in range(30):
        try:
            engine.compose(project, upstream, "exec", "-T", "postgres", "psql", "-U", "reflector", "-c",
                           "CREATE TABLE transcript (id text); INSERT INTO transcript VALUES ('kept')")
            break
        except AssertionError:
            if attempt == 29:
                raise
            time.sleep(1)
    engine.compose(project, upstream, "down")  # the volume stays, as after upstream's own down

    work = tmp_path / "work"
    work.mkdir()
    args = ["--profiles-dir", str(TEST_PROFILES), "--wait-timeout", "120"]
    refused = tool("up", "--project-name", project, *args, cwd=work)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    line, = refused.stderr.strip().splitlines()
    assert f"project {project!r} already has a Postgres volume ({project}_postgres_data" in line
    assert "--adopt DIR" in line and "another --project-name" in line
    assert not (work / ".compose-tunnel").exists()  # nothing written, nothing started

    try:
        adopted = tool("up", "--adopt", str(clone), *args, cwd=work)
        assert adopted.returncode == 0, adopted.stdout + adopted.stderr
        assert f"adopted {clone} as project {project!r}: the database password" in adopted.stdout
        assert "hatchet database: database" not in adopted.stdout  # upstream's init script made it
        server_env = engine.docker("exec", f"{project}-server-1", "env").stdout
        assert "DATABASE_URL=postgresql+asyncpg://reflector:reflector@postgres:5432/reflector" in server_env
        assert "SECRET_KEY=upstream-secret" in server_env
        kept = engine.docker("exec", f"{project}-postgres-1", "psql", "-U", "reflector", "-tAc",
                             "SELECT id FROM transcript").stdout.strip()
        assert kept == "kept"
        # Hatchet logged in over TCP with the adopted password; its token is in the clients.
        assert "HATCHET_CLIENT_TOKEN=" in server_env
        again = tool("up", cwd=work)  # the volume is now known: replay works
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        tool("down", "--volumes", cwd=work)
