"""The translation of Compose's model into a Swarm stack file, and Swarm's task states.

The engine test (tests/engine/test_swarm.py) deploys the result on a real swarm; these cases
pin each rule, and check the product's own profiles translate (Compose's real model of them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from compose_tunnel.errors import UserError
from compose_tunnel.settings import Settings
from compose_tunnel.swarm import select, translate
from compose_tunnel.swarmstack import parse_tasks

WORKDIR = "/srv/ct"


def one(service: dict, files: dict | None = None, **top_level) -> tuple[dict, list[str]]:
    stack = translate({"services": {"svc": service}, **top_level}, "proj", WORKDIR, files or {})
    return stack.model["services"]["svc"], stack.notes


def test_what_swarm_does_not_take_is_dropped_and_said():
    service, notes = one({"image": "app:1", "build": {"context": "."}, "container_name": "app",
                          "pull_policy": "never", "depends_on": {"db": {"condition": "service_healthy"}},
                          "restart": "unless-stopped", "environment": {"A": "1"}})
    assert service == {"image": "app:1", "environment": {"A": "1"},
                       "deploy": {"restart_policy": {"condition": "any"}, "endpoint_mode": "dnsrr"}}
    assert "build dropped (images must exist on the nodes (--build builds them here)): svc" in notes
    assert "restart unless-stopped -> deploy.restart_policy any: svc" in notes
    assert any(note.startswith("depends_on dropped") for note in notes)


@pytest.mark.parametrize("restart, condition", [("always", "any"), ("on-failure:3", "on-failure"),
                                                ("no", "none")])
def test_restart_policies(restart, condition):
    assert one({"image": "x", "restart": restart})[0]["deploy"]["restart_policy"] == {"condition": condition}


def test_a_services_own_deploy_section_wins():
    deploy = {"restart_policy": {"condition": "none"}, "endpoint_mode": "vip", "replicas": 3}
    assert one({"image": "x", "restart": "always", "scale": 5, "deploy": deploy})[0]["deploy"] == deploy


def test_scale_becomes_replicas():
    assert one({"image": "x", "scale": 4})[0]["deploy"]["replicas"] == 4


def test_ports_loopback_ones_are_not_published_the_others_in_host_mode():
    service, notes = one({"image": "x", "ports": [
        {"mode": "ingress", "host_ip": "127.0.0.1", "target": 8888, "published": "8888", "protocol": "tcp"},
        {"mode": "ingress", "host_ip": "0.0.0.0", "target": 443, "published": "443", "protocol": "tcp"},
        {"mode": "ingress", "target": 19139, "published": "19140", "protocol": "udp"},
        {"mode": "ingress", "host_ip": "192.0.2.7", "target": 80, "published": "80", "protocol": "tcp"},
        {"mode": "ingress", "target": 9000, "protocol": "tcp"},
    ]})
    assert service["ports"] == [
        {"target": 443, "protocol": "tcp", "mode": "host", "published": 443},
        {"target": 19139, "protocol": "udp", "mode": "host", "published": 19140},
        {"target": 80, "protocol": "tcp", "mode": "host", "published": 80},
        {"target": 9000, "protocol": "tcp"},
    ]
    assert any("not published" in note and "svc 127.0.0.1:8888:8888/tcp" in note for note in notes)
    assert any("every interface of its node" in note and "192.0.2.7:80:80/tcp" in note for note in notes)


def test_workdir_files_become_configs_and_owner_only_files_secrets_named_by_content():
    files = {"caddy/Caddyfile": (":443 {}\n", False), "caddy/extra.conf": ("x\n", False),
             "garage.toml": ("rpc_secret = 'x'\n", True)}
    stack = translate({"services": {
        "caddy": {"image": "caddy", "volumes": [
            {"type": "bind", "source": f"{WORKDIR}/caddy", "target": "/etc/caddy", "read_only": True},
            {"type": "volume", "source": "caddy_data", "target": "/data"}]},
        "garage": {"image": "garage", "volumes": [
            {"type": "bind", "source": f"{WORKDIR}/garage.toml", "target": "/etc/garage.toml"},
            {"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}]},
    }}, "proj", WORKDIR, files)
    caddy, garage = stack.model["services"]["caddy"], stack.model["services"]["garage"]
    assert caddy["volumes"] == [{"type": "volume", "source": "caddy_data", "target": "/data"}]
    assert caddy["configs"] == [{"source": "Caddyfile", "target": "/etc/caddy/Caddyfile", "mode": 0o444},
                                {"source": "extra_conf", "target": "/etc/caddy/extra.conf", "mode": 0o444}]
    assert garage["secrets"] == [{"source": "garage_toml", "target": "/etc/garage.toml", "mode": 0o400}]
    assert garage["volumes"] == [{"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}]
    config = stack.model["configs"]["Caddyfile"]
    assert config["file"] == f"{WORKDIR}/caddy/Caddyfile" and config["name"].startswith("proj_Caddyfile_")
    changed = translate({"services": {"caddy": {"image": "caddy", "volumes": [
        {"type": "bind", "source": f"{WORKDIR}/caddy/Caddyfile", "target": "/etc/caddy/Caddyfile"}]}}},
        "proj", WORKDIR, {**files, "caddy/Caddyfile": (":80 {}\n", False)})
    assert changed.model["configs"]["Caddyfile"]["name"] != config["name"]  # a new config: an update


def test_a_mounted_workdir_path_nothing_generates_is_refused():
    with pytest.raises(UserError, match="mounts /srv/ct/mine, which compose-tunnel does not generate"):
        one({"image": "x", "volumes": [{"type": "bind", "source": f"{WORKDIR}/mine", "target": "/m"}]})


@pytest.mark.parametrize("key, value", [("privileged", True), ("devices", ["/dev/fuse"]),
                                        ("network_mode", "host"), ("security_opt", ["no-new-privileges"]),
                                        ("volumes_from", ["other"])])
def test_what_swarm_cannot_run_is_refused_not_dropped(key, value):
    with pytest.raises(UserError, match=f"service 'svc' cannot run on a swarm: {key}"):
        one({"image": "x", key: value})


def test_placement_from_the_profiles_node_role():
    service, _ = one({"image": "x", "x-swarm-node": "edge", "deploy": {"placement": {"constraints": ["node.role == manager"]}}})
    assert service["deploy"]["placement"]["constraints"] == ["node.role == manager",
                                                             "node.labels.compose-tunnel.edge == true"]
    assert "x-swarm-node" not in service
    with pytest.raises(UserError, match="x-swarm-node 'front' is not one of edge, data, gpu"):
        one({"image": "x", "x-swarm-node": "front"})


def test_gpu_reservations_become_generic_resources():
    service, notes = one({"image": "x", "deploy": {"resources": {
        "limits": {"memory": "8G"},
        "reservations": {"memory": "1G", "devices": [{"driver": "nvidia", "count": -1, "capabilities": ["gpu"]},
                                                     {"device_ids": ["0", "1"], "capabilities": ["gpu"]}]}}}})
    assert service["deploy"]["resources"] == {"limits": {"memory": "8G"}, "reservations": {
        "memory": "1G", "generic_resources": [{"discrete_resource_spec": {"kind": "gpu", "value": 3}}]}}
    assert any("generic resource gpu=3" in note for note in notes)


def test_health_extra_hosts_and_networks_in_the_form_stack_files_take():
    service, _ = one({"image": "x", "healthcheck": {"test": ["CMD", "true"], "interval": "1s",
                                                    "start_interval": "1s"},
                      "extra_hosts": ["host.example=192.0.2.1", "v6:::1"],
                      "networks": {"default": None, "back": {"aliases": ["db"], "ipv4_address": "10.0.0.9"}}},
                     networks={"default": {"name": "proj_default", "ipam": {}}, "back": {}})
    assert service["healthcheck"] == {"test": ["CMD", "true"], "interval": "1s"}
    assert service["extra_hosts"] == ["host.example:192.0.2.1", "v6:::1"]
    assert service["networks"] == {"default": None, "back": {"aliases": ["db"]}}


def test_the_network_is_an_attachable_overlay_and_volumes_keep_their_stack_names():
    stack = translate({"services": {}, "networks": {"default": {"name": "proj_default"}},
                       "volumes": {"pg": {"name": "proj_pg"}, "ext": {"external": True, "name": "mine"}}},
                      "proj", WORKDIR, {})
    assert stack.model["networks"] == {"default": {"driver": "overlay", "attachable": True}}
    assert stack.model["volumes"] == {"pg": {}, "ext": {"external": True}}
    assert stack.model["version"] == "3.9"


def test_a_group_is_deployed_with_only_what_it_uses():
    files = {"a.conf": ("a", False), "b.conf": ("b", True)}
    stack = translate({"services": {
        "a": {"image": "x", "volumes": [{"type": "bind", "source": f"{WORKDIR}/a.conf", "target": "/a"}]},
        "b": {"image": "x", "volumes": [{"type": "bind", "source": f"{WORKDIR}/b.conf", "target": "/b"}]}}},
        "proj", WORKDIR, files)
    group = select(stack.model, ["a"])
    assert list(group["services"]) == ["a"] and list(group["configs"]) == ["a_conf"] and "secrets" not in group
    assert group["networks"] == stack.model["networks"]


def row(name: str, state: str, desired: str = "Running", error: str = "") -> str:
    return json.dumps({"Name": name, "CurrentState": f"{state} 3 seconds ago", "DesiredState": desired,
                       "Error": error, "ID": name, "Image": "x", "Node": "vm", "Ports": ""})


def test_task_states_health_crash_loops_and_placement_failures():
    text = "\n".join([
        row("p_web.1", "Running"),
        row("p_api.1", "Starting"),  # a healthcheck not yet passed
        row("p_job.1", "Starting"), *(row("p_job.1", "Failed", "Shutdown", "task: non-zero exit (1)") for _ in range(3)),
        row("p_gpu.1", "Pending", error="no suitable node (scheduling constraints not satisfied on 1 node)"),
        row("p_old.1", "Running"), row("p_old.1", "Failed", "Shutdown", "task: non-zero exit (1)"),
    ])
    states = {state.service: state for state in parse_tasks(text, "p")}
    assert states["web"].ready and not states["api"].ready and not states["api"].failed
    assert states["api"].describe() == "running (starting)"
    assert states["job"].failed and states["job"].describe() == "restarting: task: non-zero exit (1)"
    assert states["gpu"].failed and "no suitable node" in states["gpu"].describe()
    assert states["old"].ready  # failed once, running now
    assert [s.service for s in parse_tasks(text, "p", ["web", "gpu"])] == ["gpu", "web"]


def test_swarm_is_a_saved_setting_and_refuses_a_publish_address():
    settings = Settings.from_options({"target": "swarm", "publish_ip": "0.0.0.0"})
    assert settings.to_options()["target"] == "swarm" and "--swarm" in settings.to_args()
    assert Settings.from_options(settings.to_options()) == settings
    with pytest.raises(UserError, match="--publish-ip 127.0.0.1 cannot apply on a swarm"):
        Settings.from_options({"target": "swarm", "publish_ip": "127.0.0.1"})


def test_the_products_profiles_translate_from_composes_own_model(tmp_path, compose_bin):
    """Every built-in profile at once (GPU ones included), as Compose models it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    result = subprocess.run([sys.executable, "-m", "compose_tunnel", "generate", "--swarm", "--gpu",
                             "--gpu-image", "registry.example.com/gpu:1", "--ollama-gpu", "--livekit",
                             "--garage", "--tunnels", "tcp.example.com:9055,udp.example.com:14139",
                             "--node-ip", "203.0.113.9", "--lan-ip", "192.0.2.1"],
                            cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    work = tmp_path / ".compose-tunnel"
    from compose_tunnel.swarmstack import _generated
    from compose_tunnel.yamlio import load_compose_text

    model = load_compose_text(subprocess.run([compose_bin, "config"], cwd=work, capture_output=True, text=True,
                                             check=True, env={"PATH": os.environ["PATH"]}).stdout)
    stack = translate(model, "reflector", str(work), _generated(work))
    services = stack.model["services"]
    assert stack.nodes == {"hatchet": "data", "redis": "data", "postgres": "data", "gpu": "gpu",
                           "ollama": "gpu", "livekit-server": "edge", "garage": "data", "caddy": "edge"}
    assert services["caddy"]["ports"][-1] == {"target": 443, "protocol": "tcp", "mode": "host", "published": 443}
    assert services["livekit-server"]["secrets"][0]["target"] == "/etc/livekit.yaml"
    assert services["gpu"]["deploy"]["resources"]["reservations"]["generic_resources"]
    assert not any("x-swarm-node" in service for service in services.values())
    assert services["server"]["environment"]["CELERY_BROKER_URL"] == "redis://redis:6379/1"  # env files inlined


def test_scale_is_saved_changed_per_service_and_checked(tmp_path, compose_bin):
    from compose_tunnel.change import Change, apply_change

    saved = apply_change(None, Change(given={"scale": ["worker=3", "beat=1"]}))
    assert saved.scale == ("beat=1", "worker=3") and saved.to_args() == ["--scale", "beat=1", "--scale", "worker=3"]
    changed = apply_change(saved, Change(given={"scale": ["worker=5"]}))
    assert changed.scale == ("beat=1", "worker=5")
    for bad, message in (("worker", "is not SERVICE=N"), ("worker=-1", "is not SERVICE=N"),
                         ("worker=101", "at most 100 copies")):
        with pytest.raises(UserError, match=message):
            Settings.from_options({"scale": [bad]})
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}

    def generate(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "compose_tunnel", "generate", "--lan-ip", "192.0.2.1", *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True)

    assert generate("--scale", "worker=3").returncode == 0
    model = json.loads(subprocess.run([compose_bin, "config", "--format", "json"], cwd=tmp_path / ".compose-tunnel",
                                      capture_output=True, text=True, check=True,
                                      env={"PATH": os.environ["PATH"]}).stdout)
    assert model["services"]["worker"]["scale"] == 3  # as Compose reads it
    for args, message in ((["--scale", "nope=2"], "there is no service 'nope' in this stack"),
                          (["--scale", "server=2"], "server publishes host port(s) 127.0.0.1:1250:1250")):
        result = generate(*args)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_scale_tells_host_ports_from_container_ports():
    from compose_tunnel.renderers import apply_scale

    compose = {"services": {
        "api": {"ports": ["8080"]},  # a container port only: Docker picks a host port per copy
        "worker": {"ports": [{"target": 9000, "protocol": "tcp"}]},
        "web": {"ports": [{"target": 80, "published": "8080"}]},
        "edge": {"ports": ["${PUBLISH_IP:-0.0.0.0}:443:443"]},
    }}
    apply_scale(compose, {"api": 2, "worker": 3})
    assert compose["services"]["api"]["scale"] == 2 and compose["services"]["worker"]["scale"] == 3
    for name in ("web", "edge"):
        with pytest.raises(UserError, match=f"{name} publishes host port"):
            apply_scale(compose, {name: 2})
