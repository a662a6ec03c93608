"""The whole tunnel path on a real Docker Engine, through tunnels simulated on loopback.

The product's profiles run with their images swapped for local ones by tests/engine/profiles (a
--profiles-dir: the custom-profile mechanism, dogfooded). Real parts: Docker Engine, Compose
v2, Caddy (in its image), PostgreSQL and Redis (Debian's packages), dnsmasq for the UDP tunnel's
host name. Stand-ins: the Reflector server, workers and web (the Hatchet clients refuse to start
without a token the engine accepts), Hatchet (its Tenant table in the real Postgres,
hatchet-admin), LiveKit (WebSocket on 7880, UDP echo on the port of livekit.yaml) and Garage's
CLI. The "tunnel service" is a TCP relay 127.0.0.1:19055 -> 443 and a UDP relay from
127.0.0.2:PUBLIC (the address DNS gives for the UDP host) -> 127.0.0.1:LOCAL.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
import yaml

from dns_server import running_dnsmasq
from engine.relays import TcpRelay, UdpRelay
from engine.wsclient import https_request, websocket_first_message

ROOT = Path(__file__).resolve().parents[2]
TEST_PROFILES = ROOT / "tests" / "engine" / "profiles"
PROJECT = "ct-test-stack"
TCP_HOST, TCP_PUBLIC = "tcp-host.test", 19055
UDP_HOST, UDP_IP = "udp-host.test", "127.0.0.2"
UDP_PORT = 19139  # public = local
UDP_PUBLIC_2, UDP_LOCAL_2 = 19141, 19142  # a tunnel that cannot forward to the same port

pytestmark = pytest.mark.engine


def tool(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    return subprocess.run([sys.executable, "-m", "compose_tunnel", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


PASSWORD = "it's a $ecret, \"quoted\""
PASSWORD_FILE = Path(tempfile.mkdtemp(prefix="ct-test-")) / "admin-password"
PASSWORD_FILE.write_text(PASSWORD + "\n")
LLM_MODEL = "standin-llm:1b"


def up_args(dns_port: int, udp: str, *extra: str) -> list[str]:
    return [
        "up", "--cpu", "--livekit", "--garage", "--tunnels", f"{TCP_HOST}:{TCP_PUBLIC},{udp}",
        "--ollama-cpu", "--llm-model", LLM_MODEL, "--password-file", str(PASSWORD_FILE),
        "--dns-server", f"127.0.0.1:{dns_port}", "--profiles-dir", str(TEST_PROFILES),
        "--project-name", PROJECT, "--publish-ip", "127.0.0.1", "--wait-timeout", "120", *extra,
    ]


HATCHET_CLIENTS = ("server", "worker", "hatchet-worker-llm", "hatchet-worker-cpu")
ALL_SERVICES = {"server", "worker", "beat", "web", "redis", "postgres", "livekit-server",
                "livekit-egress", "garage", "caddy", "hatchet", "hatchet-worker-llm", "hatchet-worker-cpu",
                "ollama-cpu"}
STEP_ACTION = re.compile(r"^(garage|hatchet database|hatchet token|ollama model): (?!starting )", re.MULTILINE)


def secrets_of(project: Path) -> dict:
    return tomllib.loads((project / ".compose-tunnel" / "secrets.toml").read_text())


def container_env(service: str) -> dict[str, str]:
    inspected = json.loads(subprocess.run(["docker", "inspect", f"{PROJECT}-{service}-1"],
                                          capture_output=True, text=True, check=True).stdout)
    return dict(item.split("=", 1) for item in inspected[0]["Config"]["Env"])


def psql(database: str, sql: str) -> str:
    return subprocess.run(["docker", "exec", f"{PROJECT}-postgres-1", "psql", "-U", "reflector", "-d",
                           database, "-tAc", sql], capture_output=True, text=True, check=True).stdout.strip()


def containers(*filters: str) -> dict[str, str]:
    """Container name -> id.StartedAt for the project (a restart changes the value)."""
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}",
                          *filters], capture_output=True, text=True, check=True).stdout.split()
    if not ids:
        return {}
    inspected = json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True,
                                          check=True).stdout)
    return {c["Name"].lstrip("/"): f"{c['Id']}.{c['State']['StartedAt']}" for c in inspected}


def project_resources(kind: str) -> list[str]:
    return subprocess.run(["docker", kind, "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"],
                          capture_output=True, text=True, check=True).stdout.split()


def https_get(path: str) -> tuple[int, str, bytes]:
    """GET through the TCP relay as a browser would: SNI and Host are the tunnel's address."""
    response = https_request(TCP_PUBLIC, sni=TCP_HOST, host=f"{TCP_HOST}:{TCP_PUBLIC}", path=path)
    return response.status, response.text.strip(), response.peer_cert


def udp_roundtrip(public_port: int, payload: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(2)
        for _ in range(10):  # the first datagrams may race the relay's upstream socket
            client.sendto(payload, (UDP_IP, public_port))
            try:
                return client.recvfrom(65536)[0]
            except TimeoutError:
                continue
    raise AssertionError(f"no UDP answer through {UDP_IP}:{public_port}")


@pytest.fixture(scope="module")
def dns_server():
    with running_dnsmasq(a={UDP_HOST: UDP_IP}) as server:
        yield server


@pytest.fixture(scope="module")
def stack(engine, standin_images, debian_images, docker_config, dns_server, tmp_path_factory):
    """One project started in tunnel mode; torn down (volumes included) after the module."""
    project = tmp_path_factory.mktemp("stack")
    with TcpRelay(listen=("127.0.0.1", TCP_PUBLIC), target=("127.0.0.1", 443)):
        result = tool(*up_args(dns_server.port, f"{UDP_HOST}:{UDP_PORT}"), cwd=project)
        try:
            assert result.returncode == 0, result.stdout + result.stderr
            yield project, result
        finally:
            tool("down", "--volumes", cwd=project)


def test_up_reports_what_the_user_needs(stack):
    _, result = stack
    out = result.stdout
    assert f"app and API:        https://{TCP_HOST}:{TCP_PUBLIC}" in out
    assert f"LiveKit signaling:  wss://{TCP_HOST}:{TCP_PUBLIC}/lk-ws" in out
    assert f"tunnel public port {UDP_PORT} -> local port {UDP_PORT}/udp" in out
    assert f"node_ip {UDP_IP}" in out  # resolved by the real dnsmasq
    assert "self-signed" in out
    assert f"ready {len(ALL_SERVICES)}/{len(ALL_SERVICES)}" in out
    # Garage, then Hatchet's token were bootstrapped before the clients started: each client
    # started once, with its key and its token. Hatchet's database came from Postgres's init
    # script (a new volume); Hatchet started after the database step found it. What waits for
    # another's health (LiveKit for Redis) started with the rest, not alongside.
    output = result.stdout + result.stderr
    assert re.search(r"^starting redis alongside the bootstraps$", out, re.MULTILINE), out
    assert "hatchet token: starting hatchet" in out
    assert "hatchet database: database hatchet created" not in out
    order = ["garage: key reflector created",
             "hatchet token: client token created for the default tenant", f"starting {PROJECT}: base"]
    assert [out.index(line) for line in order] == sorted(out.index(line) for line in order)
    for service in HATCHET_CLIENTS:
        assert output.count(f"Container {PROJECT}-{service}-1  Created") == 1, service
        assert f"Container {PROJECT}-{service}-1  Recreate" not in output, service
    assert "Hatchet dashboard:  http://localhost:8888 on this machine only" in out
    assert "ssh -L 8888:127.0.0.1:8888" in out
    assert re.search(r"ready in [\d.]+s \(start [\d.]+s, garage [\d.]+s, hatchet database [\d.]+s, "
                     r"hatchet token [\d.]+s, stack [\d.]+s, ollama model [\d.]+s\)", out), out
    # The LLM's model is pulled once the app is up (it takes minutes), its progress shown.
    assert out.index(f"starting {PROJECT}: base") < out.index(f"ollama model: model {LLM_MODEL} pulled")
    assert re.search(r"^  pulling [0-9a-f]{12}\.\.\. +\d+%", out, re.MULTILINE), out
    assert PASSWORD not in out + result.stderr


def test_web_and_api_answer_through_the_tcp_tunnel_and_real_caddy(stack):
    status, body, certificate = https_get("/")
    assert status == 200
    assert body == f"web / {TCP_HOST}:{TCP_PUBLIC}"
    assert b"Caddy Local Authority" in certificate
    assert https_get("/v1/meetings?x=1")[1] == f"server /v1/meetings?x=1 {TCP_HOST}:{TCP_PUBLIC}"
    assert https_get("/health")[1] == "ok server"  # routed to the API, not the web


def test_livekit_websocket_through_lk_ws_reaches_the_livekit_standin_prefix_stripped(stack):
    message = websocket_first_message(TCP_PUBLIC, sni=TCP_HOST, host=f"{TCP_HOST}:{TCP_PUBLIC}",
                                      path="/lk-ws/rtc?access_token=t")
    assert message == "livekit /rtc?access_token=t"


def test_udp_through_the_tunnel_reaches_livekit_on_the_port_of_livekit_yaml(stack):
    project, _ = stack
    livekit_yaml = (project / ".compose-tunnel" / "livekit.yaml").read_text()
    assert f"udp_port: {UDP_PORT}" in livekit_yaml and f"node_ip: {UDP_IP}" in livekit_yaml
    with UdpRelay(listen=(UDP_IP, UDP_PORT), target=("127.0.0.1", UDP_PORT)):
        assert udp_roundtrip(UDP_PORT, b"ping") == f"livekit-udp {UDP_PORT} ping".encode()


def test_garage_was_bootstrapped_and_the_server_got_its_s3_settings(stack):
    project, _ = stack
    server_env = (project / ".compose-tunnel" / "server.env").read_text()
    assert "TRANSCRIPT_STORAGE_AWS_ACCESS_KEY_ID=GK" in server_env
    assert "LIVEKIT_STORAGE_AWS_BUCKET_NAME=reflector-media" in server_env
    env = subprocess.run(["docker", "exec", f"{PROJECT}-server-1", "env"], capture_output=True,
                         text=True, check=True).stdout
    assert "TRANSCRIPT_STORAGE_AWS_ENDPOINT_URL=http://garage:3900" in env
    assert "LIVEKIT_PUBLIC_URL=wss://tcp-host.test:19055/lk-ws" in env


def test_egress_standin_running_as_non_root_reads_its_config_from_the_environment(stack):
    project, _ = stack
    livekit = yaml.safe_load((project / ".compose-tunnel" / "livekit.yaml").read_text())
    logs = subprocess.run(["docker", "logs", f"{PROJECT}-livekit-egress-1"], capture_output=True,
                          text=True, check=True).stdout
    assert "standin egress: config read as uid 1001 gid 0" in logs
    body = subprocess.run(["docker", "exec", f"{PROJECT}-livekit-egress-1", "sh", "-c",
                           'printf %s "$EGRESS_CONFIG_BODY"'], capture_output=True, text=True,
                          check=True).stdout
    config = yaml.safe_load(body)
    assert {config["api_key"]: config["api_secret"]} == livekit["keys"]
    assert config["ws_url"] == "ws://livekit-server:7880"


def test_second_up_replays_and_changes_nothing(stack):
    project, _ = stack
    before, token = containers(), secrets_of(project)["hatchet_token"]
    again = tool("up", cwd=project)
    assert again.returncode == 0, again.stderr
    assert "replaying saved configuration" in again.stdout
    assert "bootstrap: everything already in place" in again.stdout
    # Each bootstrap looked and found its work done: no step did anything.
    assert not STEP_ACTION.search(again.stdout), again.stdout
    assert containers() == before
    assert secrets_of(project)["hatchet_token"] == token


def test_a_replay_starts_again_what_was_stopped_and_checks_it(stack):
    """A replay skips starting and waiting for what already runs as applied; a stopped
    bootstrap service is not among those: it is started, waited for, and its step checks it."""
    project, _ = stack
    token = secrets_of(project)["hatchet_token"]
    subprocess.run(["docker", "stop", "-t", "1", f"{PROJECT}-garage-1", f"{PROJECT}-hatchet-1"],
                   capture_output=True, check=True)
    again = tool("up", cwd=project)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "starting garage" in again.stdout and "hatchet token: starting hatchet" in again.stdout
    assert "bootstrap: everything already in place" in again.stdout
    running = containers("--filter", "status=running")
    assert f"{PROJECT}-garage-1" in running and f"{PROJECT}-hatchet-1" in running
    assert secrets_of(project)["hatchet_token"] == token


def test_the_hatchet_token_is_in_every_clients_environment_and_never_printed(stack):
    project, result = stack
    token = secrets_of(project)["hatchet_token"]
    assert token.count(".") == 2 and token not in result.stdout + result.stderr
    for service in HATCHET_CLIENTS:
        env = container_env(service)
        assert env["HATCHET_CLIENT_TOKEN"] == token, service
        assert env["HATCHET_CLIENT_SERVER_URL"] == "http://hatchet:8888", service
        assert env["HATCHET_CLIENT_HOST_PORT"] == "hatchet:7077", service
        assert env["HATCHET_CLIENT_TLS_STRATEGY"] == "none", service
        logs = subprocess.run(["docker", "logs", f"{PROJECT}-{service}-1"], capture_output=True,
                              text=True, check=True)
        assert "token accepted by http://hatchet:8888" in logs.stdout, service  # the engine said yes
    assert (project / ".compose-tunnel" / "secrets.toml").stat().st_mode & 0o777 == 0o600
    shown = tool("config", "show", cwd=project).stdout
    assert "hatchet_token" in shown and token not in shown


def test_password_auth_and_the_local_llm_reach_the_containers(stack):
    server = container_env("server")
    assert server["AUTH_BACKEND"] == "password" and server["PUBLIC_MODE"] == "false"
    assert server["ADMIN_EMAIL"] == "admin@localhost"
    header, salt, digest = server["ADMIN_PASSWORD_HASH"].split("$")  # `$$` in the file, `$` here
    assert header == "pbkdf2:sha256:100000"
    assert digest == hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt.encode(), 100000).hex()
    web = container_env("web")
    assert web["FEATURE_REQUIRE_LOGIN"] == "true" and web["AUTH_PROVIDER"] == "credentials"
    assert web["FEATURE_ROOMS"] == "true" and web["NODE_TLS_REJECT_UNAUTHORIZED"] == "0"
    assert server["LLM_URL"] == "http://ollama-cpu:11435/v1" and server["LLM_MODEL"] == LLM_MODEL
    assert server["UI_BASE_URL"] == f"https://{TCP_HOST}:{TCP_PUBLIC}"
    assert server["TRANSCRIPT_BACKEND"] == "whisper" and server["TRANSCRIPT_FILE_TIMEOUT"] == "3600"
    listed = subprocess.run(["docker", "exec", f"{PROJECT}-ollama-cpu-1", "ollama", "list"],
                            capture_output=True, text=True, check=True).stdout
    assert LLM_MODEL in listed
    # The server reaches the LLM by the name in LLM_URL.
    tags = subprocess.run(["docker", "exec", f"{PROJECT}-server-1", "wget", "-qO-",
                           "http://ollama-cpu:11435/api/tags"], capture_output=True, text=True, check=True)
    assert LLM_MODEL in tags.stdout


def test_real_postgres_has_the_hatchet_database_and_200_connections(stack):
    assert psql("reflector", "SHOW max_connections") == "200"
    assert psql("reflector", "SELECT datname FROM pg_database WHERE datname = 'hatchet'") == "hatchet"
    # Hatchet (the stand-in) made its Tenant table there; the token is for its default tenant.
    tenant = psql("hatchet", "SELECT id FROM \"Tenant\" WHERE slug = 'default'")
    assert re.fullmatch(r"[0-9a-f-]{36}", tenant)


def test_hatchet_publishes_its_dashboard_and_grpc_on_loopback_only(stack):
    inspected = json.loads(subprocess.run(["docker", "inspect", f"{PROJECT}-hatchet-1"],
                                          capture_output=True, text=True, check=True).stdout)
    bindings = inspected[0]["HostConfig"]["PortBindings"]
    assert bindings == {"8888/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8888"}],
                        "7077/tcp": [{"HostIp": "127.0.0.1", "HostPort": "7078"}]}
    with socket.create_connection(("127.0.0.1", 8888), timeout=5) as conn:
        conn.sendall(b"GET /api/live HTTP/1.0\r\nHost: localhost\r\n\r\n")
        assert conn.recv(64).startswith(b"HTTP/1.")


def test_status_lists_every_service(stack):
    project, _ = stack
    states = json.loads(tool("status", "--json", cwd=project).stdout)
    assert {s["service"] for s in states} == ALL_SERVICES
    assert all(s["status"] == "running" for s in states)


def test_compose_habits_ps_exec_and_logs_options_reach_the_project(stack):
    project, _ = stack
    ps = tool("ps", "--services", cwd=project)
    assert ps.returncode == 0, ps.stderr
    assert set(ps.stdout.split()) == ALL_SERVICES
    printed = tool("exec", "-T", "server", "sh", "-c", "echo $ENTRYPOINT", cwd=project)
    assert (printed.returncode, printed.stdout.strip()) == (0, "server")
    failed = tool("exec", "-T", "server", "sh", "-c", "exit 3", cwd=project)
    assert failed.returncode == 3  # the command's own exit code
    logs = tool("logs", "--tail", "1", "-t", "web", cwd=project)
    assert logs.returncode == 0, logs.stderr
    lines = [line for line in logs.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", lines[0]), logs.stdout
    bad = tool("logs", "--tail", "many", cwd=project)
    assert bad.returncode == 2 and "is not a number of lines" in bad.stderr


def test_udp_local_port_differing_from_public_port_still_works(stack, dns_server):
    project, _ = stack
    result = tool(*up_args(dns_server.port, f"{UDP_HOST}:{UDP_PUBLIC_2}", "--tunnel-udp-local",
                           str(UDP_LOCAL_2)), cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"tunnel public port {UDP_PUBLIC_2} -> local port {UDP_LOCAL_2}/udp" in result.stdout
    assert f"udp_port: {UDP_PUBLIC_2}" in (project / ".compose-tunnel" / "livekit.yaml").read_text()
    with UdpRelay(listen=(UDP_IP, UDP_PUBLIC_2), target=("127.0.0.1", UDP_LOCAL_2)):
        # LiveKit listens (and advertises) the public port, reached through the local one.
        assert udp_roundtrip(UDP_PUBLIC_2, b"hello") == f"livekit-udp {UDP_PUBLIC_2} hello".encode()


def test_rebuild_with_nothing_new_to_build_keeps_the_stack_running_with_the_same_secrets(stack):
    """Nothing here has a build context and no image moved: `rebuild` replaces nothing (it used
    to take the whole stack down and up; test_upgrade.py has what it replaces, and how)."""
    project, _ = stack
    secrets = (project / ".compose-tunnel" / "secrets.toml").read_text()
    before = containers()
    result = tool("rebuild", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing to replace" in result.stdout, result.stdout
    assert containers() == before  # the same containers, not even restarted
    assert (project / ".compose-tunnel" / "secrets.toml").read_text() == secrets
    assert "client token" not in result.stdout  # the tenant survived in the kept volume
    assert container_env("server")["HATCHET_CLIENT_TOKEN"] == secrets_of(project)["hatchet_token"]
    assert https_get("/")[0] == 200


def test_down_removes_what_up_applied_even_after_the_config_dropped_a_profile(stack):
    project, _ = stack
    generated = tool("generate", "--cpu", "--profiles-dir", str(TEST_PROFILES),
                     "--project-name", PROJECT, cwd=project)
    assert generated.returncode == 0, generated.stderr
    assert tool("down", cwd=project).returncode == 0
    assert containers() == {} and project_resources("network") == []
    assert project_resources("volume")  # kept without --volumes
    assert tool("down", "--volumes", cwd=project).returncode == 0
    assert project_resources("volume") == []
    # The tenant and Garage's keys went with the volumes: their stored results are forgotten.
    assert not {"hatchet_token", "garage_key_id", "garage_secret_key"} & set(secrets_of(project))
    assert "secret_key" in secrets_of(project)
