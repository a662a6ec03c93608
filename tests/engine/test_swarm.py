"""The same stack on a Docker Swarm: a single-node swarm made by the test (and left as found).

What the compose path proves, proven again through `docker stack deploy`: HTTPS and WSS through
the TCP tunnel to the real Caddy (published in host mode on the edge node), UDP media through
the UDP tunnel, both bootstraps run in the tasks' containers, a replay that deploys nothing,
rebuild, and down with the volumes.
"""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from engine.relays import TcpRelay, UdpRelay
from engine.test_stack import (  # noqa: F401 - dns_server is a fixture (dnsmasq answering UDP_HOST)
    TCP_HOST, TCP_PUBLIC, TEST_PROFILES, UDP_HOST, UDP_IP, UDP_LOCAL_2, UDP_PUBLIC_2, dns_server, https_get,
    tool, udp_roundtrip,
)
from engine.wsclient import websocket_first_message

pytestmark = pytest.mark.engine

PROJECT = "ct-test-swarm"
LABELS = ("compose-tunnel.edge", "compose-tunnel.data")
SERVICES = {"server", "worker", "beat", "web", "redis", "postgres", "livekit-server", "livekit-egress",
            "garage", "caddy", "hatchet", "hatchet-worker-llm", "hatchet-worker-cpu"}


def docker(engine, *args: str, check: bool = True) -> str:
    return engine.docker(*args, check=check).stdout


def test_up_swarm_on_an_engine_in_no_swarm_is_one_line_and_starts_nothing(engine, tmp_path):
    """Runs first in this module, before `swarm` makes this engine one."""
    if docker(engine, "info", "--format", "{{.Swarm.LocalNodeState}}").strip() != "inactive":
        pytest.skip("this engine is in a swarm already (its owner's): the case needs one that is not")
    result = tool("up", "--swarm", "--cpu", "--lan-ip", "192.0.2.1", "--project-name", PROJECT, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        "compose-tunnel: error: this Docker Engine is not part of a swarm (--swarm deploys on one) "
        "(hint: `docker swarm init --advertise-addr IP` makes this machine one, or run without --swarm "
        "(`up --no-swarm`))"]
    assert not (tmp_path / ".compose-tunnel").exists()


@pytest.fixture(scope="module")
def swarm(engine):
    """This engine as a one-node swarm manager: made here (and left after) unless it is one."""
    state = docker(engine, "info", "--format", "{{.Swarm.LocalNodeState}}").strip()
    made = state == "inactive"
    if made:
        docker(engine, "swarm", "init", "--advertise-addr", "127.0.0.1")
    labels_before = json.loads(docker(engine, "node", "inspect", "self", "--format", "{{json .Spec.Labels}}"))
    try:
        yield engine
    finally:
        docker(engine, "stack", "rm", PROJECT, check=False)
        if made:
            docker(engine, "swarm", "leave", "--force")
        else:  # the labels compose-tunnel added to this node go again
            added = [label for label in LABELS if label not in (labels_before or {})]
            if added:
                docker(engine, "node", "update", *[a for label in added for a in ("--label-rm", label)], "self")


@pytest.fixture(scope="module")
def deployed(swarm, standin_images, debian_images, docker_config, dns_server, tmp_path_factory):
    project = tmp_path_factory.mktemp("swarm")
    args = ["up", "--swarm", "--cpu", "--livekit", "--garage", "--tunnels",
            # Swarm publishes on every address: the local port must differ from the public one
            # the relay (the tunnel agent) listens on, on 127.0.0.2.
            f"{TCP_HOST}:{TCP_PUBLIC},{UDP_HOST}:{UDP_PUBLIC_2}", "--tunnel-udp-local", str(UDP_LOCAL_2),
            "--dns-server", f"127.0.0.1:{dns_server.port}",
            "--profiles-dir", str(TEST_PROFILES), "--project-name", PROJECT, "--wait-timeout", "120",
            "--scale", "worker=2"]
    with TcpRelay(listen=("127.0.0.1", TCP_PUBLIC), target=("127.0.0.1", 443)):
        dry = tool(*args, "--dry-run", cwd=project)
        result = tool(*args, cwd=project)
        try:
            assert dry.returncode == 0, dry.stdout + dry.stderr
            assert result.returncode == 0, result.stdout + result.stderr
            yield project, result, dry
        finally:
            tool("down", "--volumes", cwd=project)


def tasks(engine) -> dict[str, str]:
    """Service -> the IDs of its running tasks (a redeploy that touches a service changes them)."""
    rows = [json.loads(line) for line in docker(engine, "stack", "ps", PROJECT, "--format", "{{json .}}",
                                                "--filter", "desired-state=running").splitlines()]
    ids: dict[str, str] = {}
    for row in sorted(rows, key=lambda row: row["Name"]):
        service = row["Name"].removeprefix(PROJECT + "_").rsplit(".", 1)[0]
        ids[service] = " ".join(filter(None, (ids.get(service), row["ID"])))
    return ids


def task_env(engine, service: str) -> dict[str, str]:
    container = docker(engine, "ps", "-q", "--filter",
                       f"label=com.docker.swarm.service.name={PROJECT}_{service}").split()[0]
    inspected = json.loads(docker(engine, "inspect", container))
    return dict(item.split("=", 1) for item in inspected[0]["Config"]["Env"])


def test_dry_run_says_what_swarm_changes(deployed):
    _, _, dry = deployed
    out = dry.stdout
    assert "swarm: depends_on dropped (compose-tunnel starts and waits in order): " in out
    assert re.search(r"swarm: not published, .*hatchet 127\.0\.0\.1:8888:8888/tcp", out)
    assert "swarm: workdir files -> Swarm secrets (named by content): garage /etc/garage.toml <- garage.toml" in out
    assert f"--resolve-image never {PROJECT}  (only garage postgres)" in out
    assert f"--resolve-image never --prune {PROJECT}" in out


def test_up_deploys_bootstraps_and_reports(deployed, swarm):
    project, result, _ = deployed
    out = result.stdout
    work = project / ".compose-tunnel"
    assert (work / "stack.yml").stat().st_mode & 0o777 == 0o600  # it holds the env files' values
    assert not list(work.glob(".stack-*"))  # the groups' files are gone
    assert "labelled this node" in out or all(
        label in docker(swarm, "node", "inspect", "self", "--format", "{{json .Spec.Labels}}") for label in LABELS)
    # Hatchet's database comes from Postgres's init script, shipped as a Swarm config; Hatchet
    # starts after the database step (Swarm would start it before Postgres is ready).
    assert "hatchet alongside" not in out and "hatchet token: starting hatchet" in out
    order = ["garage: key reflector created", "hatchet token: starting hatchet",
             "hatchet token: client token created for the default tenant", f"starting {PROJECT}: base"]
    assert [out.index(line) for line in order] == sorted(out.index(line) for line in order)
    assert f"ready {len(SERVICES) + 1}/{len(SERVICES) + 1}" in out  # two workers
    assert "Hatchet dashboard:  not published on a swarm" in out
    assert set(tasks(swarm)) == SERVICES
    worker = json.loads(docker(swarm, "service", "inspect", f"{PROJECT}_worker"))[0]["Spec"]
    assert worker["Mode"]["Replicated"]["Replicas"] == 2  # --scale worker=2
    stack_file = json.loads(docker(swarm, "service", "inspect", f"{PROJECT}_caddy"))[0]["Spec"]
    assert stack_file["TaskTemplate"]["Placement"]["Constraints"] == ["node.labels.compose-tunnel.edge == true"]
    assert stack_file["EndpointSpec"]["Mode"] == "dnsrr"


def test_https_wss_and_udp_through_the_tunnels_reach_the_swarm(deployed):
    status, body, certificate = https_get("/")  # through the fixture's TCP relay to :443
    assert (status, body) == (200, f"web / {TCP_HOST}:{TCP_PUBLIC}")
    assert b"Caddy Local Authority" in certificate
    assert https_get("/health")[1] == "ok server"
    message = websocket_first_message(TCP_PUBLIC, sni=TCP_HOST, host=f"{TCP_HOST}:{TCP_PUBLIC}",
                                      path="/lk-ws/rtc?access_token=t")
    assert message == "livekit /rtc?access_token=t"
    with UdpRelay(listen=(UDP_IP, UDP_PUBLIC_2), target=("127.0.0.1", UDP_LOCAL_2)):
        assert udp_roundtrip(UDP_PUBLIC_2, b"ping") == f"livekit-udp {UDP_PUBLIC_2} ping".encode()


def test_the_bootstrap_results_reach_the_tasks(deployed, swarm):
    project, _, _ = deployed
    secrets = (project / ".compose-tunnel" / "secrets.toml").read_text()
    token = tomllib.loads(secrets)["hatchet_token"]
    env = task_env(swarm, "server")
    assert env["HATCHET_CLIENT_TOKEN"] == token
    assert env["TRANSCRIPT_STORAGE_AWS_ACCESS_KEY_ID"].startswith("GK")
    # The stand-in server only listens once Hatchet accepted its token.
    logs = tool("logs", "server", cwd=project)
    assert "token accepted by http://hatchet:8888" in logs.stdout


def test_what_the_swarm_cannot_place_is_one_line_before_anything_is_written(deployed, tmp_path):
    """A GPU service and no GPU-labelled node (the test swarm has one node, unlabelled)."""
    result = tool("up", "--swarm", "--gpu", "--gpu-image", "compose-tunnel-test/standin:1", "--lan-ip",
                  "192.0.2.1", "--profiles-dir", str(TEST_PROFILES), "--project-name", "ct-test-swarm-gpu",
                  cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "compose-tunnel: error: no node of the swarm is labelled compose-tunnel.gpu=true, and GPU services "
        "are pinned to one (hint: `docker node update --label-add compose-tunnel.gpu=true NODE` on a node "
        "that advertises its GPUs (README: More than one machine))")
    assert not (tmp_path / ".compose-tunnel").exists()


def test_a_replay_deploys_nothing(deployed, swarm):
    project, _, _ = deployed
    before = tasks(swarm)
    again = tool("up", cwd=project)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "replaying saved configuration" in again.stdout and "--swarm" in again.stdout
    assert "bootstrap: everything already in place" in again.stdout
    assert tasks(swarm) == before


def test_status_logs_and_compose_habits_on_a_swarm(deployed):
    project, _, _ = deployed
    status = tool("status", cwd=project)
    assert status.returncode == 0 and all(re.search(rf"^{s}\s+running", status.stdout, re.M) for s in SERVICES)
    refused = tool("ps", cwd=project)
    assert refused.returncode == 2
    assert f"runs on a swarm" in refused.stderr and f"docker stack ps {PROJECT}" in refused.stderr


def test_rebuild_brings_the_stack_back_with_the_same_token(deployed, swarm):
    project, _, _ = deployed
    token_before = task_env(swarm, "server")["HATCHET_CLIENT_TOKEN"]
    result = tool("rebuild", "--no-pull", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"stopped {PROJECT}" in result.stdout
    assert task_env(swarm, "server")["HATCHET_CLIENT_TOKEN"] == token_before


def test_no_swarm_moves_the_project_back_to_compose_with_its_data(deployed, swarm):
    project, _, _ = deployed
    result = tool("up", "--no-swarm", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"stopping the previous project '{PROJECT}' (on the swarm)" in result.stdout
    assert "bootstrap: everything already in place" in result.stdout  # the same volumes: same data
    assert docker(swarm, "stack", "ps", PROJECT, check=False).strip() in ("", f"nothing found in stack: {PROJECT}")
    compose = docker(swarm, "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}").split()
    assert len(compose) == len(SERVICES) + 1  # two workers, as Compose's scale


def test_down_removes_the_stack_its_volumes_configs_and_secrets(deployed, swarm):
    project, _, _ = deployed
    result = tool("down", "--volumes", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    label = f"label=com.docker.stack.namespace={PROJECT}"
    for kind in ("service", "volume", "config", "secret", "network"):
        assert docker(swarm, kind, "ls", "-q", "--filter", label).split() == [], kind
    assert docker(swarm, "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}").split() == []
    assert "no container is running" in tool("status", cwd=project).stdout
