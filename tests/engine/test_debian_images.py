"""The images made of Debian packages (debian_images.py), proven on the real engine with small
compose files of our own: postgres and redis must behave like the official images where a
compose file depends on them, and the hatchet-lite stand-in like hatchet-lite where
compose-tunnel and Reflector's setup script depend on it."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid

import pytest
import yaml

from .debian_images import BASE_REPO, HATCHET, OLLAMA, POSTGRES, REDIS, base_key, build_debian_images
from .images import HASH_LABEL

pytestmark = pytest.mark.engine

FAST = {"interval": "1s", "timeout": "3s", "retries": 60}
PG_ENV = {"POSTGRES_USER": "reflector", "POSTGRES_PASSWORD": "secret", "POSTGRES_DB": "reflector"}
HATCHET_URL = "postgresql://reflector:secret@postgres:5432/hatchet?sslmode=disable&connect_timeout=30"
JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
INIT_SQL = """\
CREATE DATABASE hatchet;
CREATE TABLE init_runs (script text NOT NULL, at timestamptz NOT NULL DEFAULT now());
INSERT INTO init_runs (script) VALUES ('sql');
"""
INIT_SH = """\
#!/bin/sh
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \\
    -c "INSERT INTO init_runs (script) VALUES ('sh')"
"""


class Stack:
    """One throwaway compose project in tmp_path; `down -v` of just this project afterwards."""

    def __init__(self, engine, project, tmp_path) -> None:
        self.engine, self.project, self.dir = engine, project, tmp_path
        self.file = tmp_path / "compose.yml"

    def write(self, services: dict, files: dict[str, str] | None = None) -> None:
        for name, text in (files or {}).items():
            path = self.dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(0o755 if name.endswith(".sh") else 0o644)
        compose = {"services": services, "volumes": {"pgdata": {}, "hatchet_config": {}}}
        self.file.write_text(yaml.safe_dump(compose, sort_keys=False))

    def compose(self, *args: str, check: bool = True, timeout: float = 180):
        return self.engine.compose(self.project, self.file, *args, check=check, timeout=timeout)

    def up(self, *services: str) -> None:
        self.compose("up", "-d", "--wait", "--wait-timeout", "90", *services)

    def exec(self, service: str, *args: str, check: bool = True, env: dict | None = None):
        flags = [item for key, value in (env or {}).items() for item in ("-e", f"{key}={value}")]
        return self.compose("exec", "-T", *flags, service, *args, check=check)

    def sql(self, query: str, db: str = "reflector") -> str:
        """psql inside the postgres container (unix socket, like the official image: trust)."""
        return self.exec("postgres", "psql", "-X", "-U", "reflector", "-d", db, "-tAc",
                         query).stdout.strip()

    def timed_stop(self, service: str) -> float:
        started = time.monotonic()
        self.compose("stop", service)
        return time.monotonic() - started


@pytest.fixture
def stack(engine, debian_images, project_name, tmp_path):
    made = Stack(engine, project_name, tmp_path)
    yield made
    if made.file.exists():
        made.compose("down", "-v", "--remove-orphans", "-t", "0", check=False)


def service(image: str, **extra) -> dict:
    return {"image": image, "pull_policy": "never", **extra}


def client(image: str) -> dict:
    """A container to run clients in, over the project network (SIGKILL: `sleep` ignores TERM)."""
    return service(image, command=["sleep", "infinity"], stop_signal="SIGKILL")


def postgres(init: bool = True) -> dict:
    return service(POSTGRES, environment=PG_ENV, command=["postgres", "-c", "max_connections=200"],
                   volumes=["pgdata:/var/lib/postgresql/data",
                            *(["./init:/docker-entrypoint-initdb.d:ro"] if init else [])],
                   healthcheck={"test": ["CMD", "pg_isready", "-U", "reflector", "-d", "reflector"],
                                **FAST})


def hatchet() -> dict:
    return service(HATCHET, environment={"DATABASE_URL": HATCHET_URL,
                                         "SERVER_GRPC_BROADCAST_ADDRESS": "hatchet:7077"},
                   volumes=["hatchet_config:/config"], restart="no",
                   depends_on={"postgres": {"condition": "service_healthy"}},
                   healthcheck={"test": ["CMD", "curl", "-f", "http://localhost:8888/api/live"],
                                **FAST})


def pid1_uid(stack: Stack, service_name: str) -> str:
    status = stack.exec(service_name, "cat", "/proc/1/status").stdout
    return re.search(r"^Uid:\s+(\d+)", status, re.M).group(1)


# ---- images ----------------------------------------------------------------------------

def test_debian_images_are_labelled_and_cached(engine, debian_images):
    key = base_key()
    assert debian_images == {"debian": f"{BASE_REPO}:{key}", "postgres": POSTGRES,
                             "redis": REDIS, "hatchet": HATCHET, "ollama": OLLAMA}
    label = engine.docker("image", "inspect", "--format",
                          f'{{{{ index .Config.Labels "{HASH_LABEL}" }}}}', debian_images["debian"])
    assert label.stdout.strip() == key
    started = time.monotonic()
    again = build_debian_images(engine.env)
    assert time.monotonic() - started < 5
    assert not any(image.built for image in again.values())
    config = lambda tag: json.loads(engine.docker(  # noqa: E731
        "image", "inspect", "--format", "{{json .Config}}", tag).stdout)
    pg = config(POSTGRES)
    assert (pg["Entrypoint"], pg["Cmd"], pg["StopSignal"]) == (["docker-entrypoint.sh"], ["postgres"], "SIGINT")
    assert "PGDATA=/var/lib/postgresql/data" in pg["Env"]
    redis = config(REDIS)
    assert (redis["Cmd"], redis["WorkingDir"]) == (["redis-server"], "/data")
    assert config(HATCHET)["Cmd"] == ["/hatchet-lite", "--config", "/config"]


# ---- postgres ----------------------------------------------------------------------------

def test_postgres_initialises_like_the_official_image_and_keeps_its_volume(stack):
    stack.write({"postgres": postgres(), "client": client(POSTGRES)},
                {"init/01-hatchet.sql": INIT_SQL, "init/02-marker.sh": INIT_SH})
    stack.up()
    assert stack.sql("SHOW max_connections") == "200"
    assert stack.sql("SELECT datname FROM pg_database WHERE datname = 'hatchet'") == "hatchet"
    assert stack.sql("SELECT string_agg(script, ',' ORDER BY script) FROM init_runs") == "sh,sql"
    assert stack.exec("postgres", "cat", "/proc/1/comm").stdout.strip() == "postgres"
    assert pid1_uid(stack, "postgres") == stack.exec("postgres", "id", "-u", "postgres").stdout.strip()

    # password login over TCP from another container; a wrong password is refused
    login = ["psql", "-X", "-h", "postgres", "-U", "reflector", "-d", "reflector", "-tAc",
             "SELECT current_user"]
    assert stack.exec("client", *login, env={"PGPASSWORD": "secret"}).stdout.strip() == "reflector"
    wrong = stack.exec("client", *login, env={"PGPASSWORD": "wrong"}, check=False)
    assert wrong.returncode != 0
    assert 'password authentication failed for user "reflector"' in wrong.stderr

    # a new container on the same volume: the data is there, the init scripts do not run again
    assert stack.timed_stop("postgres") < 5  # SIGINT: fast shutdown, postgres is PID 1
    stack.compose("down", "-t", "0")  # keeps the named volume
    stack.up("postgres")
    assert stack.sql("SELECT count(*) FROM init_runs") == "2"
    assert stack.sql("SELECT datname FROM pg_database WHERE datname = 'hatchet'") == "hatchet"
    logs = stack.compose("logs", "postgres").stdout
    assert "Skipping initialization" in logs
    assert "running /docker-entrypoint-initdb.d" not in logs


# ---- redis -------------------------------------------------------------------------------

def test_redis_answers_by_service_name_like_the_official_image(stack):
    stack.write({"redis": service(REDIS, healthcheck={"test": ["CMD", "redis-cli", "ping"], **FAST}),
                 "client": client(REDIS)})
    stack.up()
    assert stack.exec("client", "redis-cli", "-h", "redis", "ping").stdout.strip() == "PONG"
    assert stack.exec("client", "redis-cli", "-h", "redis", "set", "k", "v").stdout.strip() == "OK"
    assert stack.exec("client", "redis-cli", "-h", "redis", "get", "k").stdout.strip() == "v"
    config = stack.exec("redis", "redis-cli", "config", "get", "*").stdout.splitlines()
    settings = dict(zip(config[::2], config[1::2]))
    assert (settings["protected-mode"], settings["dir"]) == ("no", "/data")
    assert pid1_uid(stack, "redis") == stack.exec("redis", "id", "-u", "redis").stdout.strip()
    assert stack.timed_stop("redis") < 5


# ---- hatchet-lite stand-in -----------------------------------------------------------------

def _payload(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_hatchet_standin_migrates_and_issues_tokens(stack):
    stack.write({"postgres": postgres(), "hatchet": hatchet(), "client": client(POSTGRES)},
                {"init/01-hatchet.sql": INIT_SQL})
    stack.up()
    rows = stack.sql('SELECT id, slug, name FROM "Tenant"', db="hatchet").splitlines()
    assert len(rows) == 1
    tenant, slug, name = rows[0].split("|")
    assert UUID.match(tenant) and (slug, name) == ("default", "Default")
    logs = stack.compose("logs", "hatchet").stdout
    assert "STAND-IN" in logs and tenant in logs

    # the exact command Reflector's setup script runs
    created = stack.exec("hatchet", "/hatchet-admin", "token", "create", "--config", "/config",
                         "--tenant-id", tenant)
    lines = created.stdout.splitlines()
    assert len(lines) == 1, created.stdout
    token = lines[0]
    assert JWT.match(token) and len(token) > 200
    payload = _payload(token)
    assert (payload["sub"], payload["grpc_broadcast_address"]) == (tenant, "hatchet:7077")

    def token_check(value: str) -> str:
        return stack.exec("client", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                          "-H", f"Authorization: Bearer {value}",
                          "http://hatchet:8888/api/v1/standin/token-check").stdout

    assert token_check(token) == "200"
    assert token_check(token[:-4] + "AAAA") == "403"
    live = stack.exec("client", "curl", "-fsS", "http://hatchet:8888/api/live").stdout
    assert json.loads(live) == {"status": "ok"}
    assert stack.exec("client", "curl", "-fsS", "http://hatchet:8888/api/ready").returncode == 0
    grpc = stack.exec("client", "timeout", "5", "bash", "-c", "exec 3<>/dev/tcp/hatchet/7077",
                      check=False)
    assert grpc.returncode == 0, grpc.stderr

    # a tenant that does not exist, and missing flags: exit 1, an error on stderr, no token
    for args in (["--config", "/config", "--tenant-id", str(uuid.uuid4())],
                 ["--config", "/config"], ["--tenant-id", tenant]):
        failed = stack.exec("hatchet", "/hatchet-admin", "token", "create", *args, check=False)
        assert (failed.returncode, failed.stdout) == (1, ""), args
        assert failed.stderr.startswith("Error: "), args
    assert "token create" in stack.exec("hatchet", "/hatchet-admin", "--help").stdout + \
        stack.exec("hatchet", "/hatchet-admin", "token", "--help").stdout
    assert stack.timed_stop("hatchet") < 5


def test_hatchet_standin_exits_when_its_database_is_missing(stack, engine):
    stack.write({"postgres": postgres(init=False), "hatchet": hatchet()})
    stack.up("postgres")
    stack.compose("up", "-d", "hatchet")
    container = stack.compose("ps", "-a", "-q", "hatchet").stdout.strip()
    status = engine.docker("wait", container, timeout=60).stdout.strip()
    assert status == "1"
    logs = stack.compose("logs", "hatchet").stdout
    assert 'database "hatchet" does not exist' in logs
    assert "STAND-IN" in logs
