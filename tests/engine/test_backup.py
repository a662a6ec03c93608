"""Backup of a running install and its restore into another project, on a real engine.

Real: Docker Engine, Compose v2, PostgreSQL (Debian's), pg_dump/pg_restore, and Reflector's own
server, worker, beat and web (built from its source, tests/engine/profiles-real-app/): the
admin signs in through the server's password login, whose hash and SECRET_KEY come from the
secrets. Stand-ins: the Hatchet workers (they refuse to start unless Hatchet accepts their
token) and Hatchet, whose tokens live in its config volume and its tenant in its database, as
Hatchet's do; and Garage, whose metadata lives in `db.lmdb/` and whose `meta snapshot` copies it
as Garage 1.x does. Project A runs with rows in both databases and files in Garage's and the
server's volumes; `backup` runs while it serves; A is stopped (its ports are the ones B uses);
the archive is restored into project B in another workdir, and everything is compared.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from compose_tunnel.reflector import verify_password
from engine.test_real_app import ADMIN_EMAIL, REAL_APP_PROFILES
from engine.test_stack import PASSWORD, PASSWORD_FILE, TEST_PROFILES, tool

pytestmark = pytest.mark.engine
A, B = "ct-test-backup-a", "ct-test-backup-b"
GARAGE_BLOCK = "/var/lib/garage/data/3f/a1/3fa1c0ffee"
SERVER_FILE = "/app/data/recordings/meeting-1.webm"


def docker(*args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, input=input, timeout=300)
    if check and result.returncode:
        raise AssertionError(f"docker {' '.join(args)}: {result.stderr.decode(errors='replace')}")
    return result


def psql(project: str, database: str, sql: str) -> str:
    return docker("exec", f"{project}-postgres-1", "psql", "-X", "-U", "reflector", "-d", database,
                  "-v", "ON_ERROR_STOP=1", "-tAc", sql).stdout.decode().strip()


def plain_dump(project: str, database: str) -> str:
    """pg_dump's plain SQL (no timestamp in it, unlike the custom format's header), with the
    users' rows apart: Reflector's server stamps the admin's row (updated_at) each time it
    starts, which a restored project's server does (`users` compares the rest of them)."""
    text = docker("exec", f"{project}-postgres-1", "pg_dump", "-U", "reflector", "-d", database,
                  "--exclude-table-data", '"user"').stdout.decode()
    # \restrict/\unrestrict carry a random key per run (pg_dump's guard against psql meta-commands).
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.startswith(("\\restrict ", "\\unrestrict ")))


def users(project: str) -> str:
    return psql(project, "reflector", 'SELECT id, email, password_hash, created_at FROM "user" ORDER BY id')


def file_digest(project: str, service: str, path: str) -> str:
    return hashlib.sha256(docker("exec", f"{project}-{service}-1", "cat", path).stdout).hexdigest()


def secrets(workdir: Path) -> dict:
    return tomllib.loads((workdir / "secrets.toml").read_text())


def http(url: str, body: dict | None = None, token: str | None = None) -> tuple[int, object]:
    """(status, JSON answer) of a request to a port the project publishes on loopback."""
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            text = answer.read().decode()
            return answer.status, json.loads(text) if text.strip().startswith(("{", "[", "n")) else text
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def token_accepted(token: str) -> bool:
    """Hatchet (published on 127.0.0.1:8888) accepts the client token."""
    return http("http://127.0.0.1:8888/api/v1/standin/token-check", token=token)[0] == 200


def login(password: str = PASSWORD) -> tuple[int, object]:
    """The admin signs in with the server's password login: an API token signed with SECRET_KEY."""
    return http("http://127.0.0.1:1250/v1/auth/login", {"email": ADMIN_EMAIL, "password": password})


@pytest.fixture(scope="module")
def backed_up(engine, standin_images, debian_images, reflector_images, docker_config, tmp_path_factory):
    """Project A with data, its archive taken while it ran, its dumps and digests; A stopped."""
    root = tmp_path_factory.mktemp("backup")
    a_dir, b_dir = root / "a", root / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    try:
        up = tool("up", "--cpu", "--garage", "--lan-ip", "192.0.2.1", "--password-file", str(PASSWORD_FILE),
                  "--profiles-dir", str(TEST_PROFILES), "--profiles-dir", str(REAL_APP_PROFILES),
                  "--project-name", A, "--publish-ip", "127.0.0.1", "--wait-timeout", "300", cwd=a_dir,
                  timeout=900)
        assert up.returncode == 0, up.stdout + up.stderr
        status, signed_in = login()
        assert status == 200, signed_in
        token = signed_in["access_token"]  # type: ignore[index]
        status, transcript = http("http://127.0.0.1:1250/v1/transcripts", {"name": "kept by the backup"},
                                  token=token)
        assert status == 200, transcript
        psql(A, "reflector", "CREATE TABLE backup_check (id serial PRIMARY KEY, title text, owner text); "
                             "INSERT INTO backup_check (title, owner) SELECT 'meeting ' || n, 'admin@localhost' "
                             "FROM generate_series(1, 5000) AS n")
        psql(A, "hatchet", "CREATE TABLE run_log (id serial PRIMARY KEY, step text); "
                           "INSERT INTO run_log (step) SELECT 'step ' || n FROM generate_series(1, 300) AS n")
        block = os.urandom(3 << 20)
        docker("exec", "-i", f"{A}-garage-1", "sh", "-c",
               f"mkdir -p {os.path.dirname(GARAGE_BLOCK)} && cat > {GARAGE_BLOCK}", input=block)
        docker("exec", "-i", "-u", "0", f"{A}-server-1", "sh", "-c",
               f"mkdir -p {os.path.dirname(SERVER_FILE)} && cat > {SERVER_FILE}", input=os.urandom(1 << 20))
        archive = root / "a.tar"
        taken = tool("backup", "-o", str(archive), cwd=a_dir, timeout=600)
        assert taken.returncode == 0, taken.stdout + taken.stderr
        state = {
            "root": root, "a_dir": a_dir, "archive": archive, "backup": taken,
            "dumps": {db: plain_dump(A, db) for db in ("reflector", "hatchet")},
            "users": users(A),
            "files": {(s, p): file_digest(A, s, p) for s, p in (("garage", GARAGE_BLOCK), ("server", SERVER_FILE))},
            "secrets": secrets(a_dir / ".compose-tunnel"),
            "token": token, "transcript": transcript["id"],  # type: ignore[index]
            "a_running": [line for line in docker("ps", "--filter", f"label=com.docker.compose.project={A}",
                                                  "--format", "{{.Names}}").stdout.decode().split()],
        }
        assert tool("down", cwd=a_dir).returncode == 0  # A's volumes stay; B needs its ports
        yield state
    finally:
        tool("down", "--volumes", cwd=a_dir)
        tool("down", "--volumes", "--workdir", str(b_dir / ".compose-tunnel"), cwd=b_dir)


def assert_restored_equal(backed_up: dict, b_work: Path) -> None:
    for database, dump in backed_up["dumps"].items():
        assert plain_dump(B, database) == dump, f"the {database} database differs after the restore"
    assert users(B) == backed_up["users"] and ADMIN_EMAIL in backed_up["users"]
    for (service, path), digest in backed_up["files"].items():
        assert file_digest(B, service, path) == digest, path
    restored = secrets(b_work)
    assert restored == backed_up["secrets"]  # the Garage key and Hatchet token were kept, not made anew
    assert token_accepted(restored["hatchet_token"])
    assert not token_accepted(restored["hatchet_token"][:-4] + "AAAA")
    key = docker("exec", f"{B}-garage-1", "/garage", "key", "info", restored["garage_key_id"],
                 "--show-secret").stdout.decode()
    assert restored["garage_secret_key"] in key
    # The admin signs in to B with the same password; the token A's server issued before the backup
    # still opens the transcript made then (SECRET_KEY and the user's row came back with it).
    assert verify_password(PASSWORD, restored["admin_password_hash"])
    status, signed_in = login()
    assert status == 200, signed_in
    assert login(PASSWORD + "x")[0] == 401
    for token in (backed_up["token"], signed_in["access_token"]):  # type: ignore[index]
        status, transcript = http(f"http://127.0.0.1:1250/v1/transcripts/{backed_up['transcript']}", token=token)
        assert status == 200 and transcript["name"] == "kept by the backup", transcript  # type: ignore[index]


def test_backup_while_running_then_restore_into_another_project_gives_everything_back(backed_up):
    out = backed_up["backup"].stdout
    archive: Path = backed_up["archive"]
    assert archive.stat().st_mode & 0o777 == 0o600
    assert "holds the install's secrets" in out
    assert "from its snapshot" in out and "no service was stopped" in out
    assert not list(archive.parent.glob(".a.tar.*"))  # no temporary left
    # The stack kept serving: every container of A ran through the backup.
    assert {"ct-test-backup-a-server-1", "ct-test-backup-a-postgres-1",
            "ct-test-backup-a-garage-1"} <= set(backed_up["a_running"])
    listed = subprocess.run(["tar", "-tf", str(archive)], capture_output=True, text=True, check=True).stdout.split()
    assert listed[0] == "FORMAT" and listed[-1] == "manifest.json"
    assert {"postgres/reflector.dump", "postgres/hatchet.dump", "volumes/garage_meta.tar",
            "volumes/garage_data.tar", "volumes/server_data.tar", "workdir/secrets.toml"} <= set(listed)

    b_work = backed_up["root"] / "b" / ".compose-tunnel"
    restored = tool("restore", str(archive), "--workdir", str(b_work), "-p", B, "--wait-timeout", "300",
                    cwd=backed_up["root"], timeout=900)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    # Garage's node, layout, bucket and key, Hatchet's database and token: all found as they were.
    for made in ("layout assigned", "bucket reflector-media created", "key reflector created",
                 "database hatchet created", "client token"):
        assert made not in restored.stdout, restored.stdout
    assert_restored_equal(backed_up, b_work)


def test_a_project_holding_data_is_refused_and_left_as_it_was(backed_up):
    b_work = backed_up["root"] / "b" / ".compose-tunnel"
    before = (b_work / "secrets.toml").read_text(), plain_dump(B, "reflector")
    refused = tool("restore", str(backed_up["archive"]), "--workdir", str(b_work), "-p", B,
                   cwd=backed_up["root"])
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "already holds data" in lines[0] and "--force" in lines[0], refused.stderr
    assert ((b_work / "secrets.toml").read_text(), plain_dump(B, "reflector")) == before
    assert not (b_work / "restoring.toml").exists()


def test_a_forced_restore_killed_part_way_blocks_up_and_completes_when_run_again(backed_up):
    b_work = backed_up["root"] / "b" / ".compose-tunnel"
    psql(B, "reflector", "INSERT INTO backup_check (title) VALUES ('made after the restore')")
    assert plain_dump(B, "reflector") != backed_up["dumps"]["reflector"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "compose_tunnel", "restore", str(backed_up["archive"]), "--workdir",
         str(b_work), "-p", B, "--force", "--wait-timeout", "300"],
        cwd=backed_up["root"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    assert process.stdout is not None
    for line in process.stdout:
        seen.append(line)
        if "volume garage_data restored" in line:  # volumes back, the databases not yet
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    text = "".join(seen)
    assert process.returncode == -signal.SIGKILL, text
    assert "--force: replacing project ct-test-backup-b already holds data" in text
    assert (b_work / "restoring.toml").exists()

    up = tool("up", "--workdir", str(b_work), cwd=backed_up["root"], timeout=600)
    assert up.returncode == 2
    assert "did not finish" in up.stderr and "restore" in up.stderr, up.stderr

    again = tool("restore", str(backed_up["archive"]), "--workdir", str(b_work), "-p", B,
                 "--wait-timeout", "300", cwd=backed_up["root"], timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "completing the unfinished restore" in again.stdout
    assert not (b_work / "restoring.toml").exists()
    assert_restored_equal(backed_up, b_work)  # the row made after the restore is gone with the rest
