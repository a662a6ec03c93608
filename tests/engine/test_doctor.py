"""`doctor` and `watch` on a real Docker Engine, through tunnels simulated on loopback.

One tunnel stack (test profiles, real Caddy, Postgres, Redis, dnsmasq; stand-ins for the app,
Hatchet, LiveKit and Garage's CLI). The "tunnel service" is a TCP relay 127.0.0.1:TCP_PUBLIC ->
443 and a UDP relay 127.0.0.2:UDP_PORT -> 127.0.0.1:UDP_PORT; dnsmasq answers both tunnel host
names from a hosts file a test can rewrite. Healthy, every check passes; each fault a test
injects gives its own ✗ and fix; `watch` follows a DNS change by restarting livekit-server
alone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from dns_server import running_dnsmasq
from engine.relays import TcpRelay, UdpRelay, free_port

ROOT = Path(__file__).resolve().parents[2]
TEST_PROFILES = ROOT / "tests" / "engine" / "profiles"
PROJECT = "ct-test-doctor"
TCP_HOST, TCP_PUBLIC = "tcp-host.test", 19255
UDP_HOST, UDP_IP, MOVED_IP = "udp-host.test", "127.0.0.2", "127.0.0.3"
UDP_PORT = 19239

pytestmark = pytest.mark.engine


def tool(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 240
         ) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    return subprocess.run([sys.executable, "-m", "compose_tunnel", *args], cwd=cwd, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def hosts(udp_ip: str) -> str:
    return f"127.0.0.1 {TCP_HOST}\n{udp_ip} {UDP_HOST}\n"


class Tunnels:
    """The two relays, each stopped and started again by the tests that need it down."""

    def __init__(self) -> None:
        self.tcp = self.udp = None

    def start_tcp(self, target: tuple[str, int] = ("127.0.0.1", 443)) -> None:
        self.tcp = TcpRelay(listen=("127.0.0.1", TCP_PUBLIC), target=target)
        self.tcp.start()

    def start_udp(self) -> None:
        self.udp = UdpRelay(listen=(UDP_IP, UDP_PORT), target=("127.0.0.1", UDP_PORT))
        self.udp.start()

    @contextmanager
    def down(self, kind: str) -> Iterator[None]:
        """The relay ("tcp" or "udp") stopped for the block, as an agent not running; started after."""
        getattr(self, kind).stop()
        try:
            yield
        finally:
            getattr(self, f"start_{kind}")()

    def stop(self) -> None:
        for relay in (self.tcp, self.udp):
            if relay is not None:
                relay.stop()


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    hosts_file = tmp_path_factory.mktemp("dns") / "hosts"
    hosts_file.write_text(hosts(UDP_IP))
    with running_dnsmasq(hosts_file=hosts_file) as server:
        yield server, hosts_file


@pytest.fixture(scope="module")
def stack(engine, standin_images, debian_images, docker_config, dns, tmp_path_factory):
    """The stack started in tunnel mode, both relays running; torn down after the module."""
    server, _ = dns
    project = tmp_path_factory.mktemp("doctor")
    tunnels = Tunnels()
    tunnels.start_tcp()
    tunnels.start_udp()
    try:
        result = tool("up", "--cpu", "--livekit", "--garage", "--tunnels",
                      f"{TCP_HOST}:{TCP_PUBLIC},{UDP_HOST}:{UDP_PORT}", "--dns-server",
                      f"127.0.0.1:{server.port}", "--profiles-dir", str(TEST_PROFILES),
                      "--project-name", PROJECT, "--publish-ip", "127.0.0.1", "--wait-timeout", "120",
                      cwd=project)
        assert result.returncode == 0, result.stdout + result.stderr
        yield project, tunnels
    finally:
        tunnels.stop()
        tool("down", "--volumes", cwd=project)


def doctor(project: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, dict], str]:
    """Exit code, the checks by name (from --json), and the plain output of a second run."""
    ran = tool("doctor", "--json", *args, cwd=project, env=env)
    assert ran.returncode in (0, 1), ran.stdout + ran.stderr
    report = json.loads(ran.stdout)
    plain = tool("doctor", *args, cwd=project, env=env)
    assert plain.returncode == ran.returncode and not plain.stderr, plain.stderr
    return ran.returncode, {check["name"]: check for check in report["checks"]}, plain.stdout


def failed(checks: dict[str, dict]) -> set[str]:
    return {name for name, check in checks.items() if check["status"] == "fail"}


def test_a_healthy_tunnel_stack_passes_every_check(stack):
    project, _ = stack
    code, checks, out = doctor(project)
    assert code == 0, out
    assert failed(checks) == set(), out
    assert set(checks) == {"docker", "disk", "configuration", "services", "udp address", "tcp path",
                           "udp path", "app health", "hatchet token", "garage key", "caddy CA"}
    assert all(check["status"] in ("ok", "warn") for check in checks.values()), out
    assert f"https://{TCP_HOST}:{TCP_PUBLIC} reaches this install's Caddy" in out
    assert f"LiveKit answers STUN at {UDP_HOST}:{UDP_PORT}" in out  # through the UDP relay
    assert f"{UDP_HOST} resolves to {UDP_IP}, the node_ip LiveKit advertises" in out
    assert "Certificate Trust Settings" in out and "SHA-256" in out
    assert re.search(r"^11 of 11 checks passed", out, re.MULTILINE), out
    for line in out.splitlines()[:11]:
        assert line.startswith(("✓ ", "! ")), line


def test_make_doctor_and_docker_tunnel_doctor(stack, docker_config, tmp_path):
    """The same checks through `make doctor` and through the docker CLI plugin (`docker tunnel
    doctor`, installed in a DOCKER_CONFIG of the test's own, with the Compose plugin beside it)."""
    project, _ = stack
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    made = subprocess.run(["make", "-s", "-C", str(ROOT), "doctor", f"WORKDIR={project / '.compose-tunnel'}"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    assert re.search(r"^11 of 11 checks passed", made.stdout, re.MULTILINE), made.stdout
    config = tmp_path / "docker-config"
    (config / "cli-plugins").mkdir(parents=True)
    (config / "cli-plugins" / "docker-compose").symlink_to((docker_config / "cli-plugins" / "docker-compose").resolve())
    env["DOCKER_CONFIG"] = str(config)
    assert tool("plugin", "install", cwd=project, env=env).returncode == 0
    shown = subprocess.run(["docker", "tunnel", "--help"], cwd=project, env=env, capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout.startswith("Usage: docker tunnel "), shown.stdout + shown.stderr
    ran = subprocess.run(["docker", "tunnel", "doctor", "--json"], cwd=project, env=env, capture_output=True,
                         text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert json.loads(ran.stdout)["ok"] is True


def test_the_tcp_relay_stopped_is_the_tunnel_agent_not_running(stack):
    project, tunnels = stack
    with tunnels.down("tcp"):
        code, checks, out = doctor(project)
    assert code == 1 and failed(checks) == {"tcp path"}, out
    check = checks["tcp path"]
    assert "refused" in check["message"] and "Caddy answers on this machine" in check["message"]
    assert check["hint"] == (f"is the TCP tunnel agent running and forwarding {TCP_HOST}:{TCP_PUBLIC} "
                             "to this machine's port 443?")
    assert re.search(r"^✗ tcp path .*\(fix: is the TCP tunnel agent running", out, re.MULTILINE), out
    assert re.search(r"^10 of 11 checks passed, 1 failed", out, re.MULTILINE), out


def test_the_tcp_relay_pointing_at_another_caddy_is_told_apart(stack, caddy_bin, tmp_path):
    """Another machine's Caddy (real Caddy, another install) answers HTTPS on the tunnel."""
    project, tunnels = stack
    port = free_port()
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text("{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n"
                         f"\thttp_port {free_port()}\n\tstorage file_system {tmp_path / 'data'}\n}}\n"
                         f"https://{TCP_HOST}:{port} {{\n\ttls internal\n"
                         "\trespond \"another install's Caddy\" 200\n}\n")
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    other = subprocess.Popen([str(caddy_bin), "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port)
        tunnels.tcp.stop()
        tunnels.start_tcp(target=("127.0.0.1", port))
        code, checks, out = doctor(project)
    finally:
        tunnels.tcp.stop()
        tunnels.start_tcp()
        other.terminate()
        other.wait(10)
    assert code == 1 and failed(checks) == {"tcp path"}, out
    assert "answers HTTP 200, but not as this install's Caddy: the tunnel reaches another server" in \
        checks["tcp path"]["message"]
    assert checks["tcp path"]["hint"].startswith("point the TCP tunnel at this machine's port 443")


def _wait_for_port(port: int) -> None:
    """Until the other Caddy answers HTTPS for the tunnel's host name (its certificate made)."""
    from compose_tunnel import probes

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if probes.request(("127.0.0.1", port), "/", host=TCP_HOST, tls=True, timeout=1, server_name=TCP_HOST).ok:
            return
        time.sleep(0.1)
    raise AssertionError(f"the other Caddy does not answer on {port}")


def test_the_udp_relay_stopped_is_the_udp_agent_not_forwarding(stack):
    project, tunnels = stack
    with tunnels.down("udp"):
        code, checks, out = doctor(project)
    assert code == 1 and failed(checks) == {"udp path"}, out
    assert f"LiveKit answers on local port {UDP_PORT}/udp" in checks["udp path"]["message"]
    assert checks["udp path"]["hint"] == f"is the UDP tunnel agent running and forwarding to local port {UDP_PORT}?"


def test_a_changed_dns_answer_is_the_node_ip_drift(stack, dns):
    project, _ = stack
    server, hosts_file = dns
    hosts_file.write_text(hosts(MOVED_IP))
    server.reload()
    try:
        code, checks, out = doctor(project)
    finally:
        hosts_file.write_text(hosts(UDP_IP))
        server.reload()
    assert code == 1 and "udp address" in failed(checks), out
    assert checks["udp address"]["message"].startswith(
        f"{UDP_HOST} now resolves to {MOVED_IP}, but LiveKit advertises node_ip {UDP_IP}")
    assert checks["udp address"]["hint"].startswith("run `compose-tunnel up`")
    assert failed(checks) <= {"udp address", "udp path"}  # nothing relays the new address


def test_a_stopped_service_is_named_with_its_last_log_lines(stack):
    project, _ = stack
    subprocess.run(["docker", "stop", "-t", "1", f"{PROJECT}-web-1"], capture_output=True, check=True)
    try:
        code, checks, out = doctor(project)
    finally:
        subprocess.run(["docker", "start", f"{PROJECT}-web-1"], capture_output=True, check=True)
        _wait_healthy(f"{PROJECT}-web-1")
    assert code == 1 and failed(checks) == {"services"}, out
    assert "web (exited" in checks["services"]["message"]
    assert checks["services"]["hint"].startswith("`compose-tunnel logs web` shows more")
    details = checks["services"]["details"]
    assert details[0].startswith("web: exited") and "standin http web: listening on tcp 3000" in "\n".join(details)
    assert "    web: exited" in out  # the details under the line


def _wait_healthy(container: str, seconds: float = 60) -> None:
    """Until the container's health check passes again (the next test finds the stack healthy)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        health = subprocess.run(["docker", "inspect", "--format", "{{.State.Health.Status}}", container],
                                capture_output=True, text=True).stdout.strip()
        if health == "healthy":
            return
        time.sleep(0.5)
    raise AssertionError(f"{container} is not healthy after {seconds:g}s")


def test_an_env_file_edited_without_up_is_a_configuration_not_applied(stack):
    """The user's own line in web's env file: Compose would recreate web, which runs without it."""
    project, _ = stack
    www_env = project / ".compose-tunnel" / "www.env"
    original = www_env.read_text()
    www_env.write_text(original + "MY_OWN_SETTING=1\n")
    try:
        code, checks, out = doctor(project)
    finally:
        www_env.write_text(original)
    assert code == 1 and failed(checks) == {"configuration"}, out
    assert checks["configuration"]["message"] == "web: running from another configuration than the applied one"
    assert checks["configuration"]["hint"] == "run `compose-tunnel up` to apply it"


def test_the_disk_check_on_a_tiny_filesystem(stack, tmp_path):
    project, _ = stack
    mount = tmp_path / "tiny"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        subprocess.run(["cp", "-a", str(project / ".compose-tunnel"), str(mount / "work")], check=True)
        stats = os.statvfs(mount)
        (mount / "filler").write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - 16 * 1024))
        code, checks, out = doctor(project, "--workdir", str(mount / "work"))
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
    assert code == 1 and "disk" in failed(checks), out
    assert re.match(rf"the workdir \({re.escape(str(mount / 'work'))}\) is nearly full: \d\.\d% free",
                    checks["disk"]["message"]), checks["disk"]
    assert "docker system df" in checks["disk"]["hint"]


def test_docker_unreachable_is_one_line_and_the_engine_checks_wait_for_it(stack):
    project, _ = stack
    code, checks, out = doctor(project, env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert code == 1
    assert checks["docker"]["message"].startswith("the Docker daemon is not reachable")
    assert "start it" in checks["docker"]["hint"]
    for name in ("configuration", "services", "hatchet token", "garage key", "caddy CA"):
        assert checks[name]["message"] == "not checked: Docker does not answer", name
    assert checks["tcp path"]["status"] == "ok"  # the network checks still run
    assert "Traceback" not in out


def containers() -> dict[str, str]:
    ids = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"],
                         capture_output=True, text=True, check=True).stdout.split()
    inspected = json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True,
                                          check=True).stdout)
    return {c["Name"].lstrip("/"): c["Id"] for c in inspected}


def test_watch_follows_a_dns_change_restarting_livekit_alone(stack, dns):
    project, _ = stack
    server, hosts_file = dns
    livekit_yaml = project / ".compose-tunnel" / "livekit.yaml"
    assert f"node_ip: {UDP_IP}" in livekit_yaml.read_text()
    before = containers()
    interval = 2
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    with tempfile.TemporaryFile("w+") as log:
        watcher = subprocess.Popen([sys.executable, "-m", "compose_tunnel", "watch", "--interval", str(interval)],
                                   cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_for(lambda: "watching" in _read(log), 30, log)
            second = tool("watch", cwd=project)  # one watch per workdir
            assert second.returncode == 2 and "is already watched (pid" in second.stderr, second.stderr
            hosts_file.write_text(hosts(MOVED_IP))
            server.reload()
            changed = time.monotonic()
            _wait_for(lambda: f"node_ip {UDP_IP} -> {MOVED_IP}" in _read(log), interval + 60, log)
            seen_after = time.monotonic() - changed
            # A cheap check failing is logged, and nothing is restarted: web stays stopped.
            web = f"{PROJECT}-web-1"
            subprocess.run(["docker", "stop", "-t", "1", web], capture_output=True, check=True)
            try:
                _wait_for(lambda: "✗ services       not running or not healthy: web (exited" in _read(log),
                          interval + 30, log)
                time.sleep(interval)  # one more round
                assert _state(web) == "exited", _read(log)
            finally:
                subprocess.run(["docker", "start", web], capture_output=True, check=True)
                _wait_healthy(web)
            _wait_for(lambda: "(passes again)" in _read(log), interval + 30, log)
            watcher.send_signal(signal.SIGTERM)
            assert watcher.wait(30) == 0
        finally:
            if watcher.poll() is None:
                watcher.kill()
            hosts_file.write_text(hosts(UDP_IP))
            server.reload()
        out = _read(log)
    assert "watch stopped" in out and "Traceback" not in out, out
    assert f"node_ip: {MOVED_IP}" in livekit_yaml.read_text()
    after = containers()
    moved = {name for name in after if after[name] != before.get(name)}
    assert moved == {f"{PROJECT}-livekit-server-1"}, (moved, out)
    env_text = (project / ".compose-tunnel" / ".env").read_text()
    assert env_text == (project / ".compose-tunnel" / "applied" / ".env").read_text()
    # The applied configuration is what runs: doctor finds no drift of files (only the address,
    # which now differs from what DNS answers again).
    code, checks, out = doctor(project)
    assert checks["configuration"]["status"] == "ok", out
    print(f"watch saw the DNS change after {seen_after:.1f}s (interval {interval}s)")


def _state(container: str) -> str:
    return subprocess.run(["docker", "inspect", "--format", "{{.State.Status}}", container],
                          capture_output=True, text=True).stdout.strip()


def _read(log) -> str:
    log.seek(0)
    return log.read()


def _wait_for(condition, seconds: float, log) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds}s:\n{_read(log)}")
