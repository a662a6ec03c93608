"""`up`'s waits run a starting container's own health check (health.py), on a real engine.

Each check here has an interval of 300 s: Docker runs it first five minutes after the start,
so a wait that ends while Docker still says `starting` ended on compose-tunnel's own run of it.
"""

from __future__ import annotations

import json

import pytest

from compose_tunnel.stack import StartFailed, Stack

pytestmark = pytest.mark.engine


def project(tmp_path, name: str, image: str, services: dict) -> Stack:
    compose = {"services": {service: {"image": image, "pull_policy": "never", "init": True,
                                      **definition}
                            for service, definition in services.items()}}
    (tmp_path / "compose.yml").write_text(json.dumps(compose))
    (tmp_path / ".env").write_text("")
    return Stack(tmp_path, name, tmp_path / "compose.yml", tmp_path / ".env")


def docker_health(engine, stack: Stack, service: str) -> str:
    container = f"{stack.project_name}-{service}-1"
    return engine.docker("inspect", "--format", "{{.State.Health.Status}}", container).stdout.strip()


SLOW = {"interval": "300s", "timeout": "5s", "retries": 3, "start_period": "0s"}


def test_a_wait_ends_when_the_containers_own_check_passes(engine, standin_images, docker_config,
                                                          clean_projects, project_name, tmp_path):
    stack = project(tmp_path, project_name, standin_images["busybox"], {
        # ready a second after its start: the check fails before, passes after
        "shell": {"command": ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 600"],
                  "healthcheck": {"test": ["CMD-SHELL", "test -e /tmp/ready"], **SLOW}},
        "exec-form": {"command": ["sleep", "600"],
                      "healthcheck": {"test": ["CMD", "cat", "/etc/hostname"], **SLOW}},
        "no-check": {"command": ["sleep", "600"]},
    })
    stack.up()
    lines: list[str] = []
    stack.wait_until_ready(60, lines.append)
    assert lines[-1].endswith("ready 3/3"), lines
    for service in ("shell", "exec-form"):
        assert docker_health(engine, stack, service) == "starting"  # Docker has not run it yet
    # The file the check looks for exists: the probe did not pass before the service was ready.
    assert engine.docker("exec", f"{project_name}-shell-1", "test", "-e", "/tmp/ready").returncode == 0


def test_a_failing_check_keeps_the_wait_waiting_and_says_so(engine, standin_images, docker_config,
                                                            clean_projects, project_name, tmp_path):
    stack = project(tmp_path, project_name, standin_images["busybox"], {
        "never": {"command": ["sleep", "600"],
                  "healthcheck": {"test": ["CMD-SHELL", "echo not yet; exit 1"], **SLOW}},
        "hanging": {"command": ["sleep", "600"],  # a check past its timeout counts as failed
                    "healthcheck": {"test": ["CMD", "sleep", "60"], **{**SLOW, "timeout": "1s"}}},
    })
    stack.up()
    lines: list[str] = []
    with pytest.raises(StartFailed) as failed:
        stack.wait_until_ready(4, lines.append)
    assert "the stack not ready after 4s" in failed.value.report
    assert "never (running (starting))" in lines[-1] and "hanging (running (starting))" in lines[-1]
    assert docker_health(engine, stack, "never") == "starting"
