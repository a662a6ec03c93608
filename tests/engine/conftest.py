"""Fixtures for tests against a real Docker Engine.

`engine` skips every test that uses it when no engine answers, unless the environment says
COMPOSE_TUNNEL_REQUIRE_ENGINE=1 (CI), where that is a failure. Test stacks use compose project
names starting with `ct-test-` (see `project_name`); `clean_projects` removes their containers,
networks and volumes after a test, and the session removes leftovers before and after it runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from compose_tunnel.errors import last_line

from .debian_images import build_debian_images
from .images import ImageError, build_images
from .relays import free_port as _free_port

PROJECT_PREFIX = "ct-test-"
PROJECT_LABEL = "com.docker.compose.project"
INFO_TIMEOUT = 10


@dataclass
class Engine:
    """The docker CLI with the session's DOCKER_CONFIG (which holds the Compose v2 plugin)."""

    env: dict[str, str]
    server_version: str

    def docker(self, *args: str, check: bool = True, timeout: float = 180,
               input: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def compose(self, project: str, compose_file: Path, *args: str, check: bool = True,
                timeout: float = 180) -> subprocess.CompletedProcess:
        assert project.startswith(PROJECT_PREFIX), f"test projects start with {PROJECT_PREFIX}"
        return self.docker("compose", "-p", project, "-f", str(compose_file), *args,
                           check=check, timeout=timeout)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test in this directory needs the engine: marked so, whatever its module says, so
    that `-m "not engine"` never starts (or removes) a test project."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.engine)


def _require_engine() -> bool:
    return os.environ.get("COMPOSE_TUNNEL_REQUIRE_ENGINE") == "1"


def _unavailable(reason: str):
    message = f"no Docker Engine reachable: {reason}"
    if _require_engine():
        pytest.fail(f"{message} (COMPOSE_TUNNEL_REQUIRE_ENGINE=1)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def engine(docker_config: Path) -> Engine:
    """A reachable Docker Engine and a working `docker compose` (v2), or skip/fail."""
    env = {**os.environ, "DOCKER_CONFIG": str(docker_config)}
    try:
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], env=env,
                              capture_output=True, text=True, timeout=INFO_TIMEOUT)
    except FileNotFoundError:
        _unavailable("the docker CLI is not installed")
    except subprocess.TimeoutExpired:
        _unavailable(f"`docker info` did not answer within {INFO_TIMEOUT}s")
    if info.returncode != 0 or not info.stdout.strip():
        _unavailable(f"`docker info` failed: {last_line(info.stderr) or 'no output'}")
    compose = subprocess.run(["docker", "compose", "version", "--short"], env=env,
                             capture_output=True, text=True, timeout=INFO_TIMEOUT)
    if compose.returncode != 0:
        _unavailable(f"`docker compose` (v2 plugin) does not work: {last_line(compose.stderr) or 'no output'}")
    engine = Engine(env, info.stdout.strip())
    _remove_test_projects(engine)  # leftovers of an interrupted run
    yield engine
    _remove_test_projects(engine)


@pytest.fixture(scope="session")
def standin_images(engine: Engine, caddy_bin: Path) -> dict[str, str]:
    """Builds (or finds up to date) every test image; returns their tags by short name:
    busybox, standin, garage, caddy."""
    try:
        built = build_images(engine.env, caddy_bin)
    except ImageError as error:
        if _require_engine():
            pytest.fail(str(error), pytrace=False)
        pytest.skip(str(error))
    return {name: image.tag for name, image in built.items()}


@pytest.fixture(scope="session")
def debian_images(engine: Engine) -> dict[str, str]:
    """Builds (or finds up to date) the images made of Debian packages (debian_images.py);
    returns their tags by short name: debian, postgres, redis, hatchet, ollama."""
    try:
        built = build_debian_images(engine.env)
    except ImageError as error:
        if _require_engine():
            pytest.fail(str(error), pytrace=False)
        pytest.skip(str(error))
    return {name: image.tag for name, image in built.items()}


SKIP_REAL_APP = "COMPOSE_TUNNEL_SKIP_REAL_APP"


@pytest.fixture(scope="session")
def reflector_images(engine: Engine, debian_images: dict[str, str]) -> dict[str, str]:
    """Reflector's own backend and frontend, built from its source snapshot (minutes, cold; then
    cached by their inputs): tags by short name, backend and frontend. A developer who wants a
    fast run sets COMPOSE_TUNNEL_SKIP_REAL_APP=1 (CI never does): the real-app tests skip."""
    if os.environ.get(SKIP_REAL_APP) == "1":
        if _require_engine():
            pytest.fail(f"{SKIP_REAL_APP}=1 with COMPOSE_TUNNEL_REQUIRE_ENGINE=1: CI runs the real app",
                        pytrace=False)
        pytest.skip(f"{SKIP_REAL_APP}=1: the real Reflector app's tests are skipped")
    from .reflector_backend import build_backend_image
    from .reflector_frontend import build_frontend_image

    try:
        backend = build_backend_image(engine.env)
        frontend = build_frontend_image(engine.env)
    except ImageError as error:
        if _require_engine():
            pytest.fail(str(error), pytrace=False)
        pytest.skip(str(error))
    return {"backend": backend.tag, "frontend": frontend.tag}


@pytest.fixture
def free_port():
    """free_port(host="127.0.0.1", udp=False) -> a port free right now."""
    return _free_port


@pytest.fixture
def project_name(request: pytest.FixtureRequest) -> str:
    """A unique `ct-test-<test name>-<random>` compose project name."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:30].strip("-")
    return f"{PROJECT_PREFIX}{slug}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def clean_projects(engine: Engine):
    """After the test: remove every container, network and volume of a `ct-test-*` project."""
    yield
    _remove_test_projects(engine)


def _test_project_objects(engine: Engine, kind: str, id_field: str) -> list[str]:
    args = {"container": ["ps", "-a"], "network": ["network", "ls"], "volume": ["volume", "ls"]}[kind]
    result = engine.docker(*args, "--filter", f"label={PROJECT_LABEL}", "--format",
                           f'{{{{.{id_field}}}}} {{{{.Label "{PROJECT_LABEL}"}}}}', check=False)
    ids = []
    for line in result.stdout.splitlines():
        object_id, _, project = line.partition(" ")
        if project.startswith(PROJECT_PREFIX):
            ids.append(object_id)
    return ids


def _remove_test_projects(engine: Engine) -> None:
    containers = _test_project_objects(engine, "container", "ID")
    if containers:
        engine.docker("rm", "-f", "-v", *containers, check=False)
    networks = _test_project_objects(engine, "network", "ID")
    if networks:
        engine.docker("network", "rm", *networks, check=False)
    volumes = _test_project_objects(engine, "volume", "Name")
    if volumes:
        engine.docker("volume", "rm", "-f", *volumes, check=False)
