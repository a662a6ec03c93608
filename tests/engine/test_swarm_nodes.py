"""Two machines: a second Docker Engine (its own network namespace, a veth pair on a private
subnet) joins this one's swarm; a worker replica and the GPU-labelled service land there and
reach the stack by name, while the edge and data services stay here.

The swarm is made by the test and left as found (this engine leaves it, the second one goes).
"""

from __future__ import annotations

import json

import pytest

from engine.second_node import HOST_IP, NODE_IP, second_engine
from engine.test_stack import TCP_HOST, TCP_PUBLIC, TEST_PROFILES, tool

pytestmark = pytest.mark.engine

PROJECT = "ct-test-nodes"
STANDIN = "compose-tunnel-test/standin:1"  # the image of every service not pinned here


def docker(engine, *args: str, check: bool = True) -> str:
    return engine.docker(*args, check=check).stdout


@pytest.fixture(scope="module")
def two_nodes(engine, standin_images, debian_images, docker_config):
    if docker(engine, "info", "--format", "{{.Swarm.LocalNodeState}}").strip() != "inactive":
        pytest.skip("this engine is in a swarm already (its owner's): the test makes its own")
    with second_engine() as node:
        docker(engine, "swarm", "init", "--advertise-addr", HOST_IP)
        try:
            token = docker(engine, "swarm", "join-token", "--quiet", "worker").strip()
            node.docker("swarm", "join", "--token", token, "--advertise-addr", NODE_IP, f"{HOST_IP}:2377")
            node_id = node.docker("info", "--format", "{{.Swarm.NodeID}}").strip()
            docker(engine, "node", "update", "--label-add", "compose-tunnel.gpu=true", node_id)
            node.load(STANDIN)
            yield node, node_id
        finally:
            node.docker("swarm", "leave", "--force", check=False)
            docker(engine, "swarm", "leave", "--force", check=False)


@pytest.fixture(scope="module")
def deployed(two_nodes, tmp_path_factory):
    node, node_id = two_nodes
    project = tmp_path_factory.mktemp("nodes")
    result = tool("up", "--swarm", "--gpu", "--gpu-image", STANDIN, "--tunnel-tcp", f"{TCP_HOST}:{TCP_PUBLIC}",
                  "--lan-ip", "192.0.2.1", "--profiles-dir", str(TEST_PROFILES), "--project-name", PROJECT,
                  "--scale", "worker=2", "--wait-timeout", "180", cwd=project, timeout=400)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        yield project, node, node_id
    finally:
        tool("down", "--volumes", cwd=project)
        node.docker("volume", "prune", "--force", check=False)  # the node's own (gpu cache)


def placed(engine) -> dict[str, list[str]]:
    """Service -> the node IDs of its running tasks."""
    rows = [json.loads(line) for line in docker(engine, "stack", "ps", PROJECT, "--no-trunc", "--format",
                                                "{{json .}}", "--filter", "desired-state=running").splitlines()]
    out: dict[str, list[str]] = {}
    for row in rows:
        task = json.loads(docker(engine, "inspect", row["ID"]))[0]
        service = row["Name"].removeprefix(PROJECT + "_").rsplit(".", 1)[0]
        out.setdefault(service, []).append(task["NodeID"])
    return out


def test_the_gpu_service_and_a_worker_replica_land_on_the_second_node(deployed, engine):
    _, _, node_id = deployed
    nodes = placed(engine)
    here = docker(engine, "info", "--format", "{{.Swarm.NodeID}}").strip()
    assert nodes["gpu"] == [node_id]  # pinned by the label compose-tunnel.gpu
    assert node_id in nodes["worker"] and len(nodes["worker"]) == 2  # --scale worker=2, spread
    for service in ("postgres", "redis", "hatchet", "caddy"):  # data and edge: this node
        assert nodes[service] == [here], service


def test_the_second_nodes_tasks_reach_the_stack_by_name(deployed, engine):
    _, node, _ = deployed
    # The worker there got its token accepted by hatchet (on this node) through the overlay.
    container = node.docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={PROJECT}_worker").split()[0]
    assert "token accepted by http://hatchet:8888" in node.docker("logs", container)
    # And this node reaches the GPU service there by its alias, as the server does.
    caddy = docker(engine, "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={PROJECT}_caddy").split()[0]
    answer = docker(engine, "exec", caddy, "wget", "-qO-", "http://transcription:8000/v1/ping")
    assert answer.startswith("gpu /v1/ping")
