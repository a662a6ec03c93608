"""Reading `docker compose ps --format json`, in both of the formats Compose has printed.

The engine tests read the current format from the real Compose; these pin the older array form
and the fields a readiness decision rests on.
"""

from __future__ import annotations

import json

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
