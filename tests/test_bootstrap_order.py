"""Which services `up` starts with the first bootstraps: those consuming no bootstrap result."""

from __future__ import annotations

import pytest

from compose_tunnel.bootstrap import Step, started_with_steps
from compose_tunnel.workflows.prepare import prepare
from compose_tunnel.workflows.startorder import start_order
from compose_tunnel.workflows.steps import steps_for
from compose_tunnel.workflows.up import up_steps
from compose_tunnel.workspace import Workspace

POSTGRES = Step("db", ("postgres",), lambda exec, secrets: [], "set up the database", owns=("token",))
HATCHET = Step("token", ("hatchet",), lambda exec, secrets: [], "make a token", after_previous=True)
STEPS = [POSTGRES, HATCHET]
WORKDIR = "/srv/work"


def free(services: dict, fed_files=("server.env",), fed_variables=(), **top_level) -> list[str]:
    compose = {"services": {"postgres": {"image": "pg"}, "hatchet": {"depends_on": ["postgres"]},
                            **services}, **top_level}
    return started_with_steps(STEPS, compose, WORKDIR, set(fed_files), set(fed_variables))


def test_a_service_reading_no_result_and_needing_only_a_first_step_service_is_free():
    assert free({"redis": {"image": "redis"}, "lk": {"depends_on": {"redis": {}, "postgres": {}}}}) == ["redis", "lk"]


@pytest.mark.parametrize("service", [
    {"env_file": "./server.env"},
    {"env_file": ["server.env"]},
    {"env_file": [{"path": "./sub/../server.env", "required": False}]},
    {"volumes": ["./:/config:ro"]},  # the workdir itself holds the fed file
    {"volumes": [".:/config"]},
    {"volumes": [f"{WORKDIR}/server.env:/env"]},  # absolute, the same file
    {"volumes": [{"type": "bind", "source": "./server.env", "target": "/env"}]},
    {"volumes": ["~/conf:/conf"]},  # in doubt
    {"build": "."},  # a build context holding the fed file
    {"build": {"context": "./"}},
    {"configs": ["env"]},  # reads it through a top-level config
    {"environment": {"TOKEN": "${HATCHET_TOKEN}"}},
    {"command": "serve --token $HATCHET_TOKEN"},
    {"depends_on": ["hatchet"]},  # a later step's service
    {"depends_on": ["server"]},  # a consumer
    {"network_mode": "service:server"},
    {"volumes_from": ["server:ro"]},
    {"links": ["server:api"]},
    {"profiles": ["debug"]},  # naming it would start it although Compose's profile is off
    {"deploy": {"replicas": 0}},
    # Compose would start it at Docker's next scheduled check of Postgres, up to an interval late
    {"depends_on": {"postgres": {"condition": "service_healthy"}}},
])
def test_a_service_in_doubt_waits_for_the_stack(service):
    services = {"server": {"env_file": "server.env"}, "candidate": {"image": "x", **service}}
    assert free(services, fed_variables=("HATCHET_TOKEN",),
                configs={"env": {"file": "./server.env"}}) == []


def test_other_paths_and_named_volumes_do_not_hold_a_result():
    service = {"env_file": "www.env", "volumes": ["data:/data", "./caddy/Caddyfile:/etc/caddy/Caddyfile",
                                                   "/var/run/docker.sock:/var/run/docker.sock"],
               "environment": {"PORT": "${PUBLISH_IP}"}, "configs": ["other"]}
    assert free({"web": service}, fed_variables=("HATCHET_TOKEN",),
                configs={"other": {"file": "./livekit.yaml"}}) == ["web"]


def test_the_stack_of_the_tunnel_guide_starts_redis_alongside_the_bootstraps(tmp_path):
    """Found by rendering with the bootstrap results marked: server.env (Garage's key, Hatchet's
    token) feeds the app's services; Redis and LiveKit read nothing that changes, but LiveKit's
    server waits for Redis's health (and its egress for the server): they start with the rest."""
    workspace = Workspace(tmp_path / "work")
    prepared = prepare(workspace, {"profiles": ["cpu", "livekit", "garage"],
                                   "tunnels": "tcp.example.com:9055,udp.example.com:14139",
                                   "node_ip": "203.0.113.9", "lan_ip": "192.0.2.1"})
    order = start_order(workspace, prepared, steps_for(prepared.plan))
    assert (order.first, order.alongside) == (["garage", "postgres"], ["redis"])
    assert order.selective and order.dependencies["server"] == {"postgres", "redis"}
    # Once the bootstraps' services and those alongside are ready, the rest start without
    # Compose checking their dependencies again; with Redis not ready yet, it must.
    ready = {"garage", "postgres", "hatchet", "redis", "livekit-server", "livekit-egress"}
    rest = [name for name in order.services if name not in ready]
    assert order.started_with(rest, ready) and not order.started_with(rest, ready - {"redis"})


def test_hatchet_starts_after_the_database_step_even_where_postgres_init_creates_its_database(tmp_path):
    """Postgres's init script (rendered into postgres-init/) creates Hatchet's database on a
    new volume, but Hatchet waits for Postgres's health: it starts in its step, once `up` has
    seen Postgres pass its check, not in a Compose run gated on Docker's next scheduled one."""
    workspace = Workspace(tmp_path / "work")
    prepared = prepare(workspace, {"profiles": ["cpu"], "lan_ip": "192.0.2.1"})
    assert prepared.files["postgres-init/hatchet.sql"].text.endswith("CREATE DATABASE hatchet;\n")
    order = start_order(workspace, prepared, steps_for(prepared.plan))
    assert (order.first, order.alongside) == (["postgres"], ["redis"])
    dry_run = up_steps(workspace, prepared)
    assert dry_run[-2:] == [
        "would create a Hatchet client token for the default tenant (HATCHET_CLIENT_TOKEN in server.env)",
        dry_run[-1]]
    assert dry_run[-1].startswith("would run: docker compose") and "--no-deps" in dry_run[-1]
