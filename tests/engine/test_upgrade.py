"""`upgrade` and `rebuild` on the stand-ins, under a browser's load through the TCP tunnel.

The stack (`--cpu` behind the TCP tunnel: Caddy, server, web, worker, beat, the Hatchet
stand-in and worker, real Postgres and Redis) runs images under this test's own tags
(ct-test-upgrade/...: the shared compose-tunnel-test ones are never moved). A new version is a
`docker build` FROM the stand-in with another label, tagged over the old one, as a pull moves a
tag; a broken one crashes at start. The load (tests/engine/load.py) asks /health, /v1/... and /
through the TCP relay and Caddy the whole time: no request may fail.

Quick cases here; the real Reflector app's upgrade (its own migrations) is
test_upgrade_real_app.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine.load import Load
from engine.rollouts import build, docker, image_id, stack_behind_tunnel
from engine.test_stack import TEST_PROFILES, tool

PROJECT = "ct-test-upgrade"
TCP_HOST, TCP_PUBLIC = "upgrade.tunnel.test", 19063
URL_HOST = f"{TCP_HOST}:{TCP_PUBLIC}"
STANDIN = "compose-tunnel-test/standin:1"
OWN = "ct-test-upgrade"  # this test's image repositories: ct-test-upgrade/server, /web, /backend
PATHS = ["/health", "/v1/meetings", "/"]
MAX_REQUESTS = 20_000  # the load's bound; an upgrade here takes well under a minute

pytestmark = pytest.mark.engine


def project_containers() -> dict[str, dict]:
    """Name -> {service, image, id, running} of every container of the project."""
    ids = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}").stdout.split()
    rows = json.loads(docker("inspect", *ids).stdout) if ids else []
    return {row["Name"].lstrip("/"): {"service": row["Config"]["Labels"]["com.docker.compose.service"],
                                      "image": row["Image"], "id": row["Id"],
                                      "running": row["State"]["Running"]} for row in rows}


def of_service(service: str) -> list[dict]:
    return [c for c in project_containers().values() if c["service"] == service]


def overlay(directory: Path) -> Path:
    """A profiles dir whose base.yml puts the app on this test's own tags; the web builds
    from a context of its own (for `rebuild`)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "base.yml").write_text(f"""# test_upgrade.py: the app on tags this test moves.
services:
  server: {{image: "{OWN}/server:current"}}
  worker: {{image: "{OWN}/backend:current"}}
  beat: {{image: "{OWN}/backend:current"}}
  hatchet-worker-llm: {{image: "{OWN}/backend:current"}}
  web:
    image: "{OWN}/web:current"
    build: {{context: "{directory / 'web-build'}"}}
""")
    return directory


@pytest.fixture(scope="module")
def stack(engine, standin_images, debian_images, docker_config, tmp_path_factory):
    """The project up behind the TCP tunnel on this test's tags (all the stand-in at first)."""
    work = tmp_path_factory.mktemp("upgrade")
    profiles = overlay(work / "profiles")
    build(f"{OWN}/web:current", profiles / "web-build", f"FROM {STANDIN}\nLABEL ct-test-upgrade.web=built-1\n")
    for name in ("server", "backend"):
        docker("tag", STANDIN, f"{OWN}/{name}:current")
    with stack_behind_tunnel(work, project=PROJECT, own=OWN, public=URL_HOST,
                             profiles=[TEST_PROFILES, profiles]):
        yield work


def load() -> Load:
    return Load(TCP_PUBLIC, sni=TCP_HOST, host=URL_HOST, paths=PATHS, max_requests=MAX_REQUESTS)


def new_versions(work: Path, version: int) -> dict[str, str]:
    """New images of the server and the backend under their tags; their ids."""
    return {name: build(f"{OWN}/{name}:current", work / f"{name}-{version}",
                        f"FROM {STANDIN}\nLABEL ct-test-upgrade.{name}=v{version}\n")
            for name in ("server", "backend")}


def migrations(work: Path) -> list[str]:
    server = next(name for name, c in project_containers().items() if c["service"] == "server" and c["running"])
    done = docker("exec", server, "cat", "/app/data/migrations.log", check=False)
    return done.stdout.split("\n")[:-1] if done.returncode == 0 else []


def test_a_dry_run_says_what_would_be_replaced_and_how_and_changes_nothing(stack):
    new_versions(stack, 2)
    before = project_containers()
    result = tool("upgrade", "--dry-run", cwd=stack)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"would not pull {OWN}/server:current: pull_policy: never" in out  # the test overlay's
    assert f"would not pull {OWN}/web:current: built here" in out
    assert "server: new image -> rolled without a gap" in out
    assert "fixed host ports 127.0.0.1:1250, 40000-40100/udp" in out  # through a bridge
    assert "server: migrations first, once" in out
    assert "worker: new image -> rolled without a gap" in out
    assert "beat: new image -> stopped, then started (it must never run twice)" in out
    assert "unchanged (kept running as they are): " in out and "postgres" in out.split("unchanged")[1]
    assert "would replace: web:" not in out  # its image did not move
    assert project_containers() == before


def test_upgrade_replaces_what_changed_under_load_and_no_request_fails(stack):
    images = new_versions(stack, 3)
    untouched = {name: c for name, c in project_containers().items()
                 if c["service"] in ("postgres", "redis", "caddy", "hatchet", "web")}
    migrated = migrations(stack)
    with load() as traffic:
        began = time.time()
        result = tool("upgrade", cwd=stack)
        ended = time.time()
        time.sleep(1)  # and a moment after
    report = traffic.report()
    print(f"\nupgrade (stand-ins): {report}; upgrade took {ended - began:.1f}s")
    assert result.returncode == 0, result.stdout + result.stderr
    assert report.requests > 100 and not report.failed, str(report)
    assert all(count > 10 for count in report.by_path.values()), report.by_path
    for service in ("server", "worker", "hatchet-worker-llm", "beat"):
        running = of_service(service)
        expected = images["server" if service == "server" else "backend"]
        assert [c["image"] for c in running] == [expected], (service, running)
        assert running[0]["running"]
    assert {n: c for n, c in project_containers().items() if n in untouched} == untouched
    assert len(migrations(stack)) == len(migrated) + 1  # once
    out = result.stdout
    assert out.index("server: migrating") < out.index("server: new image -> rolled")
    # Each old container ended when told to (its server, Celery's warm shutdown), none was killed
    # at the end of its drain time.
    assert "still running after" not in out, out
    assert "bridge" in out and "(without the host ports)" in out
    assert f"{PROJECT} is up to date" in out


def test_a_second_upgrade_finds_nothing_to_replace(stack):
    before = project_containers()
    result = tool("upgrade", cwd=stack)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing to replace" in result.stdout
    assert project_containers() == before


def test_a_broken_new_image_is_removed_the_old_keeps_serving_and_upgrade_exits_1(stack):
    before = project_containers()
    build(f"{OWN}/server:current", stack / "server-broken",
          f"FROM {STANDIN}\nRUN printf '#!/bin/sh\\necho \"broken build: no server here\" >&2\\nexit 3\\n' "
          "> /standin/http\n")
    with load() as traffic:
        result = tool("upgrade", "--wait-timeout", "60", cwd=stack)
    report = traffic.report()
    print(f"\nupgrade to a broken image (stand-ins): {report}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert not report.failed, str(report)
    assert "server: the new container" in result.stderr
    assert "it is removed, the old one keeps serving" in result.stderr
    assert "broken build: no server here" in result.stderr  # its last log lines
    assert "Traceback" not in result.stderr
    assert project_containers() == before  # the bridge is gone, nothing else was touched
    docker("tag", before_image(before, "server"), f"{OWN}/server:current")  # back to what runs


def before_image(containers: dict[str, dict], service: str) -> str:
    return next(c["image"] for c in containers.values() if c["service"] == service)


def test_rebuild_builds_from_the_build_context_and_rolls_the_web_under_load(stack):
    (stack / "profiles" / "web-build" / "Dockerfile").write_text(
        f"FROM {STANDIN}\nLABEL ct-test-upgrade.web=built-2\n")
    before = project_containers()
    with load() as traffic:
        result = tool("rebuild", cwd=stack)
    report = traffic.report()
    print(f"\nrebuild (stand-ins): {report}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not report.failed, str(report)
    web = of_service("web")
    assert [c["image"] for c in web] == [image_id(f"{OWN}/web:current")] != [before_image(before, "web")]
    assert "web: new image -> rolled without a gap" in result.stdout
    # Only what the build changed: the rest runs on, the same containers.
    assert {n: c for n, c in project_containers().items() if c["service"] != "web"} == \
        {n: c for n, c in before.items() if c["service"] != "web"}


def test_before_a_rebuild_as_it_was_down_then_up_fails_requests_under_the_same_load(stack):
    """The before figure, and the proof that the load sees a gap when there is one: what
    `rebuild` did until now (down with the volumes kept, then up) under the same load."""
    with load() as traffic:
        began = time.monotonic()
        down = tool("down", cwd=stack)
        up = tool("up", "--wait-timeout", "120", cwd=stack)
        took = time.monotonic() - began
        time.sleep(1)
    report = traffic.report()
    print(f"\nbefore: rebuild as down + up (stand-ins): {report}; took {took:.1f}s")
    assert down.returncode == 0 and up.returncode == 0, down.stderr + up.stdout + up.stderr
    assert len(report.failed) > 10, str(report)
