"""The stand-in images, proven against the real engine with a small compose file of our own:
they must behave like the services they replace, on the wire, or the engine tests of the
product prove nothing. Also the loopback relays that play the tunnel service."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest
import yaml

from compose_tunnel.bootstrap import CommandResult
from compose_tunnel.garage import bootstrap, parse_key, parse_layout, parse_node_id

from .relays import TcpRelay, UdpRelay, free_port
from .wsclient import https_request, websocket_first_message

pytestmark = pytest.mark.engine  # it uses the engine: -m "not engine" must leave it out

OUTPUTS = Path(__file__).parents[1] / "garage_outputs" / "v1"
SNI, HOST = "tcp-host.test", "tcp-host.test:19055"
LK_UDP = 7882

CADDYFILE = """\
:443 {
	tls internal {
		on_demand
	}
	handle_path /lk-ws/* {
		reverse_proxy lk:7880
	}
	handle {
		reverse_proxy server:1250
	}
}
"""

LIVEKIT_YAML = f"""\
# rendered like compose_tunnel/renderers.py does
port: 7880
rtc:
  tcp_port: 7881
  udp_port: {LK_UDP}
  use_external_ip: false
redis:
  address: redis:6379
keys:
  APIkey: secret
"""

LIVEKIT_RANGE_YAML = """\
port: 7880
rtc:
  tcp_port: 7881
  port_range_start: 44200
  port_range_end: 44300
"""

GARAGE_TOML = """\
metadata_dir = "/var/lib/garage/meta"
data_dir = "/var/lib/garage/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "[::]:3901"
rpc_public_addr = "127.0.0.1:3901"
rpc_secret = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

[s3_api]
s3_region = "garage"
api_bind_addr = "[::]:3900"

[admin]
api_bind_addr = "[::]:3903"
"""


def eventually(check, timeout: float = 20, interval: float = 0.25):
    """Retry `check` until it stops raising (services need a moment after `up --wait`)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (OSError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)


@pytest.fixture
def stack(engine, standin_images, project_name, tmp_path, clean_projects):
    """Writes the compose file for the given services, brings it up (--wait), yields a helper."""

    class Stack:
        def __init__(self) -> None:
            self.project, self.dir = project_name, tmp_path
            self.file = tmp_path / "compose.yml"

        def up(self, services: dict, files: dict[str, str] | None = None) -> None:
            for name, text in (files or {}).items():
                (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / name).write_text(text)
            compose = {"services": services, "volumes": {"garage_meta": {}}}
            self.file.write_text(yaml.safe_dump(compose, sort_keys=False))
            engine.compose(self.project, self.file, "up", "-d", "--wait", "--wait-timeout", "60")

        def compose(self, *args: str, check: bool = True):
            return engine.compose(self.project, self.file, *args, check=check)

        def run(self, service: str):
            """`run(args) -> CommandResult` through `docker compose exec -T SERVICE`."""
            def run(args: list[str]) -> CommandResult:
                result = self.compose("exec", "-T", service, *args, check=False)
                return CommandResult(result.returncode, result.stdout, result.stderr)
            return run

    return Stack()


def standin(*command: str, healthcheck_url: str | None = None, **extra) -> dict:
    service = {"image": "compose-tunnel-test/standin:1", "pull_policy": "never",
               "command": list(command), **extra}
    if healthcheck_url:
        service["healthcheck"] = health(healthcheck_url)
    return service


def health(url: str) -> dict:
    return {"test": ["CMD", "wget", "-qO-", url], "interval": "1s", "timeout": "3s", "retries": 30}


# ---- images ----------------------------------------------------------------------------

def test_standin_images_are_built_from_scratch_and_labelled(engine, standin_images):
    assert standin_images == {
        "busybox": "compose-tunnel-test/busybox:1", "standin": "compose-tunnel-test/standin:1",
        "garage": "compose-tunnel-test/garage:1", "caddy": "compose-tunnel-test/caddy:1"}
    config = engine.docker("image", "inspect", "--format",
                           "{{json .Config.Cmd}} {{.Config.WorkingDir}} {{json .Config.Env}}",
                           "compose-tunnel-test/caddy:1").stdout
    assert '["caddy","run","--config","/etc/caddy/Caddyfile","--adapter","caddyfile"] /srv' in config
    assert "XDG_CONFIG_HOME=/config" in config and "XDG_DATA_HOME=/data" in config
    for tag in standin_images.values():  # one COPY layer on top of nothing
        layers = engine.docker("image", "inspect", "--format", "{{len .RootFS.Layers}}", tag).stdout
        assert layers.strip() == "1", tag
    out = engine.docker("run", "--rm", "compose-tunnel-test/caddy:1", "caddy", "version").stdout
    assert out.startswith("v2.")


# ---- http / livekit / caddy --------------------------------------------------------------

@pytest.fixture
def web_stack(stack, free_port):
    """server (http stand-in), lk (livekit stand-in), lk-range, caddy: published on loopback."""
    ports = {"server": free_port(), "lk": free_port(), "caddy": free_port(),
             "udp": free_port(udp=True)}
    stack.up({
        "server": standin("/standin/http", "server", "1250",
                          healthcheck_url="http://127.0.0.1:1250/health",
                          ports=[f"127.0.0.1:{ports['server']}:1250"]),
        "lk": standin("/standin/livekit", healthcheck_url="http://127.0.0.1:7880/",
                      volumes=["./livekit.yaml:/etc/livekit.yaml:ro"],
                      ports=[f"127.0.0.1:{ports['lk']}:7880", f"127.0.0.1:{ports['udp']}:{LK_UDP}/udp"]),
        "lk-range": standin("/standin/livekit", "--config", "/etc/lk-range.yaml",
                            healthcheck_url="http://127.0.0.1:7880/",
                            volumes=["./lk-range.yaml:/etc/lk-range.yaml:ro"]),
        "caddy": {"image": "compose-tunnel-test/caddy:1", "pull_policy": "never",
                  "volumes": ["./caddy:/etc/caddy:ro"], "ports": [f"127.0.0.1:{ports['caddy']}:443"],
                  "depends_on": ["server", "lk"]},
    }, {"livekit.yaml": LIVEKIT_YAML, "lk-range.yaml": LIVEKIT_RANGE_YAML, "caddy/Caddyfile": CADDYFILE})
    return ports


def test_http_standin_answers_path_host_and_health(stack, web_stack):
    port = web_stack["server"]
    response = https_request(port, sni=None, host=HOST, path="/v1/meetings", tls=False)
    assert (response.status, response.text) == (200, f"server /v1/meetings {HOST}\n")
    assert https_request(port, sni=None, host=HOST, path="/health", tls=False).text == "ok server\n"
    logs = stack.compose("logs", "server").stdout
    assert "standin http server: listening on tcp 1250" in logs


def test_livekit_standin_answers_ok_and_websocket_upgrade_directly(web_stack):
    port = web_stack["lk"]
    assert https_request(port, sni=None, host=HOST, path="/", tls=False).text == "OK\n"
    message = websocket_first_message(port, sni=None, host=HOST, tls=False,
                                      path="/rtc?access_token=abc&auto_subscribe=1")
    assert message == "livekit /rtc?access_token=abc&auto_subscribe=1"


def test_livekit_standin_answers_websocket_upgrade_through_caddy_and_tunnel(stack, web_stack):
    public = free_port()
    with TcpRelay(listen=("127.0.0.1", public), target=("127.0.0.1", web_stack["caddy"])):
        message = eventually(lambda: websocket_first_message(
            public, sni=SNI, host=HOST, path="/lk-ws/rtc?access_token=" + "x" * 300))
        assert message == "livekit /rtc?access_token=" + "x" * 300  # handle_path stripped /lk-ws
        response = https_request(public, sni=SNI, host=HOST, path="/v1/meetings")
        assert (response.status, response.text) == (200, f"server /v1/meetings {HOST}\n")


def test_caddy_standin_on_demand_with_and_without_sni(stack, web_stack):
    """What Caddy does with `tls internal { on_demand }`: with SNI it issues a certificate for
    that name; without SNI (a client dialing an IP) it still completes the handshake, with a
    certificate for the IP address the connection reached (the container's), not our name."""
    port = web_stack["caddy"]
    named = eventually(lambda: https_request(port, sni=SNI, host=HOST, path="/health"))
    assert named.status == 200 and SNI.encode() in named.peer_cert
    anonymous = https_request(port, sni=None, host=HOST, path="/health")
    assert anonymous.status == 200 and SNI.encode() not in anonymous.peer_cert
    assert anonymous.text == named.text and named.text.startswith("ok ")


def test_livekit_standin_echoes_udp_on_its_configured_port(stack, web_stack):
    public = free_port("127.0.0.2", udp=True)
    with UdpRelay(listen=("127.0.0.2", public), target=("127.0.0.1", web_stack["udp"])) as relay:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(1)

            def ping():
                client.sendto(b"ping \x00\x01", relay.address)
                return client.recvfrom(2048)

            data, source = eventually(ping)
    assert data == f"livekit-udp {LK_UDP} ping \x00\x01".encode("latin-1")
    assert source == ("127.0.0.2", public)  # the reply comes back from the public address
    logs = stack.compose("logs", "lk", "lk-range").stdout
    assert f"udp echo on {LK_UDP} (config /etc/livekit.yaml)" in logs
    assert "udp echo on 44200 (config /etc/lk-range.yaml)" in logs  # port_range_start


# ---- garage -------------------------------------------------------------------------------

@pytest.fixture
def garage_stack(stack, free_port):
    s3 = free_port()
    stack.up({"garage": {
        "image": "compose-tunnel-test/garage:1", "pull_policy": "never",
        "command": ["/garage", "server"],
        "volumes": ["./garage.toml:/etc/garage.toml:ro", "garage_meta:/var/lib/garage/meta"],
        "ports": [f"127.0.0.1:{s3}:3900"],
        "healthcheck": health("http://127.0.0.1:3903/health"),
    }}, {"garage.toml": GARAGE_TOML})
    return {"s3": s3}


def _normalizer(ids: dict[str, str]):
    def normalize(text: str) -> str:
        for real, recorded in ids.items():
            text = text.replace(real, recorded)
        return text
    return normalize


def test_garage_standin_cli_prints_what_garage_prints(stack, garage_stack):
    """Every command of the bootstrap, compared with the recorded real-format outputs after
    swapping the random ids for the recorded ones."""
    run = stack.run("garage")
    node = parse_node_id(run(["/garage", "node", "id", "-q"]).stdout)
    ids = {node: "3b6f5e0c1d2a4b8e9f7061a2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6",
           node[:16]: "3b6f5e0c1d2a4b8e"}
    normalize = _normalizer(ids)

    def check(args, sample, exit_code=0):
        result = run(["/garage", *args])
        text = result.stdout if exit_code == 0 else result.stderr
        assert (result.exit_code, normalize(text)) == (exit_code, (OUTPUTS / sample).read_text()), args
        return result

    check(["node", "id", "-q"], "node_id_q.txt")
    check(["layout", "show"], "layout_show_empty.txt")
    check(["layout", "assign", "-z", "dc1", "-c", "1G", node[:8]], "layout_assign.txt")
    check(["layout", "show"], "layout_show_staged.txt")
    check(["layout", "apply", "--version", "2"], "layout_apply_wrong_version.stderr", 1)
    check(["layout", "apply", "--version", "1"], "layout_apply.txt")
    check(["layout", "show"], "layout_show_assigned.txt")
    check(["bucket", "info", "reflector-media"], "bucket_info_missing.stderr", 1)
    check(["bucket", "create", "reflector-media"], "bucket_create.txt")
    bucket_id = re.search(r"Bucket: (\w+)", run(["/garage", "bucket", "info", "reflector-media"]).stdout)[1]
    ids.update({bucket_id: "9d4c0a7e21f3b58c6e0d1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e",
                bucket_id[:16]: "9d4c0a7e21f3b58c"})
    check(["bucket", "info", "reflector-media"], "bucket_info_new.txt")
    check(["key", "info", "reflector"], "key_info_missing.stderr", 1)
    key = parse_key(run(["/garage", "key", "create", "reflector"]).stdout)
    ids.update({key.key_id: "GK31c2f218a2e44f485b94239e",
                key.secret: "b892c18bd37fa43f3e3e0bdc39c6e0cb8f2a7d61e4b9c0d5a6f7e8d9c0b1a2f3"})
    check(["key", "info", "reflector", "--show-secret"], "key_create.txt")
    run(["/garage", "bucket", "allow", "--read", "reflector-media", "--key", "reflector"])
    check(["bucket", "info", "reflector-media"], "bucket_info_read_only.txt")
    check(["bucket", "allow", "--read", "--write", "reflector-media", "--key", "reflector"], "bucket_allow.txt")
    check(["bucket", "info", "reflector-media"], "bucket_info_allowed.txt")
    check(["key", "info", "reflector"], "key_info.txt")
    check(["key", "info", "reflector", "--show-secret"], "key_info_show_secret.txt")


def test_garage_standin_bootstraps_once_and_keeps_state_in_its_volume(stack, garage_stack):
    run = stack.run("garage")
    garage = lambda args: run(["/garage", *args])  # noqa: E731 - the product's adapter, inline
    key, actions = bootstrap(garage, bucket="reflector-media", key_name="reflector")
    assert actions == ["layout assigned (version 1)", "bucket reflector-media created",
                       "key reflector created", "key reflector allowed to read and write reflector-media"]
    assert re.fullmatch(r"GK[0-9a-f]{24}", key.key_id) and re.fullmatch(r"[0-9a-f]{64}", key.secret)
    node = parse_node_id(garage(["node", "id", "-q"]).stdout)

    stack.compose("down")  # containers go, the named volume stays
    stack.compose("up", "-d", "--wait", "--wait-timeout", "60")
    assert parse_node_id(garage(["node", "id", "-q"]).stdout) == node
    assert parse_layout(garage(["layout", "show"]).stdout) == (True, 1)
    assert bootstrap(garage, bucket="reflector-media", key_name="reflector",
                     known_secret=key.secret) == (key, [])
    assert bootstrap(garage, bucket="reflector-media", key_name="reflector") == (key, [])

    stack.compose("down", "-v")  # the volume too: a new node, bootstrapped from scratch
    stack.compose("up", "-d", "--wait", "--wait-timeout", "60")
    assert parse_node_id(garage(["node", "id", "-q"]).stdout) != node
    _key, actions = bootstrap(garage, bucket="reflector-media", key_name="reflector",
                              known_secret=key.secret)
    assert "key reflector created" in actions


def test_garage_standin_serves_s3_and_admin_ports(garage_stack):
    response = https_request(garage_stack["s3"], sni=None, host="127.0.0.1", path="/", tls=False)
    assert response.status == 200 and b"AccessDenied" in response.body


def test_garage_standin_cli_needs_the_server(engine, standin_images, tmp_path):
    (tmp_path / "garage.toml").write_text(GARAGE_TOML)
    result = engine.docker("run", "--rm", "-v", f"{tmp_path / 'garage.toml'}:/etc/garage.toml:ro",
                           "compose-tunnel-test/garage:1", "/garage", "layout", "show", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: Unable to connect to destination RPC host.")


# ---- relays (no engine needed) ---------------------------------------------------------

def test_tcp_relay_copies_both_ways_and_stops_cleanly():
    with socket.socket() as backend:
        backend.bind(("127.0.0.1", 0))
        backend.listen()
        with TcpRelay(listen=("127.0.0.1", 0), target=backend.getsockname()) as relay:
            with socket.create_connection(relay.address, timeout=5) as client:
                conn, _ = backend.accept()
                with conn:
                    client.sendall(b"hello")
                    assert conn.recv(100) == b"hello"
                    conn.sendall(b"world")
                    assert client.recv(100) == b"world"
                    client.shutdown(socket.SHUT_WR)
                    assert conn.recv(100) == b""  # the half-close went through
        address = relay.address
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=1).close()
    assert not any(thread.is_alive() for thread in relay._threads)


def test_udp_relay_keeps_one_upstream_per_client():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as backend:
        backend.bind(("127.0.0.1", 0))
        backend.settimeout(5)
        with UdpRelay(listen=("127.0.0.2", 0), target=backend.getsockname()) as relay:
            clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
            upstream_ports = []
            for index, client in enumerate(clients):
                client.settimeout(5)
                client.sendto(f"c{index}".encode(), relay.address)
                data, upstream = backend.recvfrom(100)
                upstream_ports.append(upstream)
                backend.sendto(data + b"!", upstream)
                assert client.recvfrom(100) == (data + b"!", relay.address)
            client.sendto(b"again", relay.address)
            assert backend.recvfrom(100)[1] == upstream_ports[-1]  # same client, same upstream
            assert upstream_ports[0] != upstream_ports[1]
            for client in clients:
                client.close()
    assert not any(thread.is_alive() for thread in relay._threads)


def test_relays_refuse_non_loopback_addresses():
    with pytest.raises(ValueError):
        TcpRelay(listen=("0.0.0.0", 1), target=("127.0.0.1", 2))
