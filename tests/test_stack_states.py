"""Reading `docker compose ps --format json`, in both of the formats Compose has printed.

The engine tests read the current format from the real Compose; these pin the older array form
and the fields a readiness decision rests on.
"""

from __future__ import annotations

import json

import pytest

from compose_tunnel.stack import ServiceState, parse_ps_json

ROWS = [
    {"Name": "p-web-1", "Service": "web", "State": "running", "Health": "starting", "ExitCode": 0},
    {"Name": "p-beat-1", "Service": "beat", "State": "exited", "Health": "", "ExitCode": 3},
    {"Name": "p-redis-1", "Service": "redis", "State": "running", "Health": "healthy", "ExitCode": 0},
]
EXPECTED = [
    ServiceState("beat", "p-beat-1", "exited", None, 3),
    ServiceState("redis", "p-redis-1", "running", "healthy", 0),
    ServiceState("web", "p-web-1", "running", "starting", 0),
]


def test_one_object_per_line_as_compose_2_21_and_later_print():
    assert parse_ps_json("\n".join(json.dumps(row) for row in ROWS) + "\n") == EXPECTED


def test_a_json_array_as_older_compose_prints():
    assert parse_ps_json(json.dumps(ROWS)) == EXPECTED


def test_no_containers():
    assert parse_ps_json("") == [] and parse_ps_json("[]") == []


def test_readiness_from_status_and_health():
    beat, redis, web = parse_ps_json(json.dumps(ROWS))
    assert redis.ready and not redis.failed
    assert not web.ready and not web.failed
    assert beat.failed and beat.describe() == "exited, exit code 3"


# --- health.py: a container's own check, as `docker inspect` gives it -------------------------

from compose_tunnel.health import DEFAULT_TIMEOUT_SECONDS, HealthCheck, parse_healthcheck  # noqa: E402


@pytest.mark.parametrize("config, expected", [
    (None, None),
    ({}, None),
    ({"Test": ["NONE"]}, None),
    ({"Test": []}, None),  # inherit the image's: Docker decides
    ({"Test": ["CMD"]}, None),
    ({"Test": ["CMD", "pg_isready", "-h", "127.0.0.1"], "Timeout": 3_000_000_000},
     HealthCheck(("pg_isready", "-h", "127.0.0.1"), 3.0)),
    ({"Test": ["CMD-SHELL", "curl -f http://localhost:8888/api/live || exit 1"]},
     HealthCheck(("/bin/sh", "-c", "curl -f http://localhost:8888/api/live || exit 1"),
                 DEFAULT_TIMEOUT_SECONDS)),
])
def test_a_health_check_as_docker_inspect_shows_it(config, expected):
    assert parse_healthcheck(config) == expected


def test_a_container_caught_exiting_is_not_ready():
    # What `compose ps` said of a web container whose command exits 3, a moment after its start.
    row = {"Service": "web", "Name": "p-web-1", "State": "running", "Health": "", "ExitCode": 3}
    (state,) = parse_ps_json(json.dumps(row))
    assert not state.ready
    assert parse_ps_json(json.dumps({**row, "ExitCode": 0}))[0].ready
