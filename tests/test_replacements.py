"""What `upgrade` replaces and how (replacements.py), from facts alone; and the product's own
profiles, read by the real Compose (`docker compose config`, no engine needed), say what the
issue asks: the app and the workers rolled, beat stopped then started, the data recreated."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from compose_tunnel.errors import UserError
from compose_tunnel.replacements import (
    CONFIGURATION, NEW_IMAGE, NO_IMAGE, NOT_RUNNING, RECREATE, RESTART, ROLL, ROLLING, SINGLETON, START,
    Image, Running, fixed_host_ports, images_to_pull, plan, policies,
)
from compose_tunnel.rollout import bridge_overlay, parse_time, readiness, running_of

PROJECT = "reflector"


def model(**services) -> dict:
    return {"services": services}


def ports(*entries: tuple) -> list[dict]:
    return [{"host_ip": host, "published": str(number), "target": number, "protocol": protocol}
            for host, number, protocol in entries]


STACK = model(
    postgres={"image": "postgres:17", "volumes": [{"type": "volume", "source": "postgres_data"}]},
    redis={"image": "redis:7"},
    server={"image": "app:1", "depends_on": {"postgres": {}, "redis": {}},
            "x-rollout": {"kind": "rolling", "migrate": ["migrate", "now"]},
            "ports": ports(("127.0.0.1", 1250, "tcp"), (None, 40000, "udp"), (None, 40001, "udp"))},
    worker={"image": "app:1", "depends_on": {"redis": {}}, "x-rollout": {"kind": "rolling", "drain": 600}},
    beat={"image": "app:1", "depends_on": {"redis": {}}, "x-rollout": {"kind": "singleton"}},
    web={"image": "web:1", "depends_on": {"server": {}}, "x-rollout": {"kind": "rolling"}},
    caddy={"image": "caddy:2", "depends_on": {"server": {}, "web": {}},
           "ports": ports((None, 443, "tcp"))},
)
HASHES = {name: f"hash-{name}" for name in STACK["services"]}
IMAGES = {"postgres:17": "sha256:pg", "redis:7": "sha256:redis", "app:1": "sha256:app",
          "web:1": "sha256:web", "caddy:2": "sha256:caddy"}


def running(**overrides) -> list[Running]:
    """One running container per service, as created from HASHES and IMAGES."""
    result = []
    for name, service in STACK["services"].items():
        fields = {"name": f"{PROJECT}-{name}-1", "service": name, "image_id": IMAGES[service["image"]],
                  "config_hash": HASHES[name], "running": True}
        fields.update(overrides.get(name, {}))
        result.append(Running(**fields))
    return result


def test_nothing_changed_nothing_is_replaced():
    made = plan(STACK, HASHES, IMAGES, running(), project=PROJECT)
    assert made.replacements == [] and made.migrations == []
    assert sorted(made.unchanged) == sorted(STACK["services"])


def test_a_moved_tag_replaces_every_service_of_that_image_each_as_its_kind_says():
    made = plan(STACK, HASHES, {**IMAGES, "app:1": "sha256:app-2"}, running(), project=PROJECT)
    how = {r.service: (r.how, r.why) for r in made.replacements}
    assert how == {"server": (ROLL, (NEW_IMAGE,)), "worker": (ROLL, (NEW_IMAGE,)),
                   "beat": (RESTART, (NEW_IMAGE,))}
    assert [r.service for r in made.migrations] == ["server"]
    # The rolled group first (migrations before it), the singleton after.
    assert [r.service for r in made.rolled] == ["server", "worker"] and [r.service for r in made.last] == ["beat"]
    server = made.rolled[0]
    assert server.old == (f"{PROJECT}-server-1",) and server.bridged
    assert server.policy.fixed_ports == ("127.0.0.1:1250", "40000-40001/udp")
    assert made.rolled[1].policy.drain == 600 and not made.rolled[1].bridged


def test_the_data_goes_first_then_migrations_then_the_app_then_the_rest():
    changed = {name: {"config_hash": "old"} for name in STACK["services"]}
    made = plan(STACK, HASHES, IMAGES, running(**changed), project=PROJECT)
    assert sorted(r.service for r in made.first) == ["postgres", "redis"]
    assert [r.service for r in made.rolled] == ["server", "web", "worker"]  # web after what it needs
    assert [r.service for r in made.last] == ["beat", "caddy"]
    assert {r.how for r in made.first} == {RECREATE} and all(r.why == (CONFIGURATION,) for r in made.replacements)
    lines = made.lines()
    assert lines.index(next(line for line in lines if line.startswith("redis:"))) < \
        lines.index(next(line for line in lines if "migrations first" in line)) < \
        lines.index(next(line for line in lines if line.startswith("server: configuration")))


def test_what_does_not_run_is_started_and_not_migrated_apart():
    stopped = {"server": {"running": False}, "beat": {"running": False}}
    made = plan(STACK, HASHES, IMAGES, running(**stopped), project=PROJECT)
    assert {(r.service, r.how, r.why) for r in made.replacements} == {
        ("server", START, (NOT_RUNNING,)), ("beat", START, (NOT_RUNNING,))}
    assert made.migrations == []  # its entrypoint migrates, as on `up`


def test_a_missing_image_counts_as_changed_and_one_off_containers_are_ignored():
    containers = running() + [Running("reflector-server-run-1", "server", "sha256:old", "x", True, oneoff=True)]
    made = plan(STACK, HASHES, {**IMAGES, "web:1": None}, containers, project=PROJECT)
    assert [(r.service, r.why) for r in made.replacements] == [("web", (NO_IMAGE,))]


def test_without_caddy_a_service_on_fixed_host_ports_is_recreated_with_a_gap_said():
    services = {k: v for k, v in STACK["services"].items() if k != "caddy"}
    made = plan({"services": services}, HASHES, {**IMAGES, "app:1": "sha256:new", "web:1": "sha256:new"},
                running(), project=PROJECT)
    how = {r.service: r.how for r in made.replacements}
    assert how["server"] == RECREATE and how["web"] == ROLL and how["worker"] == ROLL
    line = next(r.describe() for r in made.replacements if r.service == "server")
    assert "a short gap" in line and "no caddy in front" in line


def test_describe_says_the_cost_of_each_kind():
    made = plan(STACK, {**HASHES, "postgres": "x", "web": "x", "beat": "x"}, IMAGES, running(), project=PROJECT)
    lines = {r.service: r.describe() for r in made.replacements}
    assert lines["postgres"] == ("postgres: configuration changed -> recreated: a short gap while it "
                                 "restarts (its data stays in its volume)")
    assert lines["web"].startswith("web: configuration changed -> rolled without a gap: a new container "
                                   "beside the old one, ready, then the old one finishes and goes")
    assert lines["beat"] == "beat: configuration changed -> stopped, then started (it must never run twice)"


def test_policies_read_x_rollout_and_default_to_recreate():
    rules = policies(STACK)
    assert rules["server"].kind == ROLLING and rules["server"].migrate == ("migrate", "now")
    assert rules["beat"].kind == SINGLETON and rules["worker"].drain == 600
    assert rules["postgres"].kind == RECREATE and rules["postgres"].stateful
    assert not rules["redis"].stateful  # no named volume in this model
    # Compose prints a `$` as `$$`; the command runs with `$`.
    escaped = model(s={"x-rollout": {"kind": "rolling", "migrate": ["sh", "-c", "echo $$(date) $$$$"]}})
    assert policies(escaped)["s"].migrate == ("sh", "-c", "echo $(date) $$")


@pytest.mark.parametrize("spec, message", [
    ("rolling", "must be a mapping"),
    ({"kind": "blue-green"}, "kind 'blue-green' is not one of rolling, singleton"),
    ({"kind": "rolling", "wait": 3}, "unknown key(s) wait"),
    ({"kind": "rolling", "migrate": "alembic upgrade head"}, "migrate must be a list of words"),
    ({"kind": "rolling", "drain": "10m"}, "drain must be a number of seconds"),
    ({"kind": "rolling", "drain": True}, "drain must be a number of seconds"),
])
def test_an_x_rollout_it_cannot_use_is_a_user_error(spec, message):
    with pytest.raises(UserError, match="service 's': x-rollout") as raised:
        policies(model(s={"x-rollout": spec}))
    assert message in raised.value.message and raised.value.hint


def test_fixed_host_ports_fold_compose_s_expanded_ranges():
    service = {"ports": ports(("127.0.0.1", 3000, "tcp"), (None, 7, "udp"), (None, 8, "udp"), (None, 9, "udp"),
                              (None, 11, "udp")) + [{"target": 80}]}
    assert fixed_host_ports(service) == ("127.0.0.1:3000", "7-9/udp", "11/udp")
    assert fixed_host_ports({"ports": [{"target": 80, "published": ""}]}) == ()


def test_images_to_pull_leave_alone_what_is_built_here_never_pulled_or_only_here():
    services = model(
        a={"image": "registry.example/a:1"},  # published, here: pulled
        b={"image": "registry.example/a:1"},  # the same image: pulled once
        c={"image": "local/c:1", "pull_policy": "never"},
        d={"build": {"context": "."}},  # Compose names it reflector-d
        e={"image": "made-here:1"},  # built or loaded here: no registry digest
        f={"image": "absent:1"},  # not here: a pull fetches it
    )
    local = {"registry.example/a:1": Image("sha256:a", True), "local/c:1": Image("sha256:c", False),
             "made-here:1": Image("sha256:e", False), "absent:1": None}
    pulled, skipped = images_to_pull(services, PROJECT, local)
    assert pulled == ["registry.example/a:1", "absent:1"]
    assert skipped == {"local/c:1": "pull_policy: never", "reflector-d": "built here from its build context",
                       "made-here:1": "exists only on this machine (built or loaded here)"}


def test_readiness_of_a_new_container_from_docker_inspect():
    now = parse_time("2026-12-04T13:00:30.5Z")
    assert now == parse_time("2026-12-04T13:00:30.500000000+00:00")
    started = {"Running": True, "StartedAt": "2026-12-04T13:00:25.123456789Z"}
    assert readiness({"State": {**started, "Health": {"Status": "healthy"}}}, now) == "ready"
    assert readiness({"State": {**started, "Health": {"Status": "starting"}}}, now) == "starting"
    assert readiness({"State": {**started, "Health": {"Status": "unhealthy"}}}, now) == "turned unhealthy"
    assert readiness({"State": started}, now) == "settling"  # no health check: 10 s unrestarted
    assert readiness({"State": started}, now + 5) == "ready"
    assert readiness({"State": started, "RestartCount": 1}, now + 60) == "restarted (it exits)"
    assert readiness({"State": {"Running": False, "ExitCode": 3}}, now) == "exited with code 3"
    assert readiness(None, now) == "is gone"
    assert parse_time("0001-01-01T00:00:00Z") is None


def test_running_of_reads_compose_s_labels():
    row = {"Name": "/reflector-server-2", "Image": "sha256:1", "State": {"Running": True},
           "Config": {"Labels": {"com.docker.compose.service": "server", "com.docker.compose.oneoff": "False",
                                 "com.docker.compose.config-hash": "abc"}}}
    assert running_of(row) == Running("reflector-server-2", "server", "sha256:1", "abc", True, False)


def test_the_bridge_overlay_drops_the_host_ports_and_nothing_else():
    assert yaml.safe_load(bridge_overlay("server").replace("!reset ", "")) == {"services": {"server": {"ports": []}}}
    assert "ports: !reset []" in bridge_overlay("server")


def test_the_products_profiles_say_how_each_service_is_replaced(tmp_path, compose_bin):
    """The tunnel guide's stack, rendered and read back by the real Compose."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    cli = [os.sys.executable, "-m", "compose_tunnel"]
    subprocess.run([*cli, "generate", "--cpu", "--livekit", "--garage", "--tunnels",
                    "tcp.example.com:9055,203.0.113.9:14139"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    text = subprocess.run([str(compose_bin), "config"], cwd=tmp_path / ".compose-tunnel", env=env,
                          capture_output=True, text=True, check=True).stdout
    rules = policies(yaml.safe_load(text))
    kinds = {name: rule.kind for name, rule in rules.items()}
    assert {n for n, k in kinds.items() if k == ROLLING} == {
        "server", "web", "worker", "hatchet-worker-llm", "hatchet-worker-cpu"}
    assert {n for n, k in kinds.items() if k == SINGLETON} == {"beat"}
    assert {"postgres", "redis", "garage", "hatchet", "caddy", "livekit-server"} <= {
        n for n, k in kinds.items() if k == RECREATE}
    assert rules["server"].migrate == ("uv", "run", "alembic", "upgrade", "head")
    assert rules["server"].fixed_ports == ("127.0.0.1:1250", "40000-40100/udp")
    assert rules["worker"].drain == 600 and rules["postgres"].stateful and rules["redis"].stateful
    assert Path(tmp_path / ".compose-tunnel" / "compose.yml").exists()
