"""`compose-tunnel generate` end to end, in a subprocess, with real Compose and real Caddy."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TCP, UDP = "my-tunnel.example.com:9055", "203.0.113.9:14139"
TUNNEL_ARGS = ["--cpu", "--livekit", "--garage", "--tunnels", f"{TCP},{UDP}"]


def run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "compose_tunnel", *args],
        cwd=cwd, capture_output=True, text=True, env=full_env, timeout=60,
    )


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    if not directory.exists():
        return {}
    return {
        str(p.relative_to(directory)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        for p in sorted(directory.rglob("*")) if p.is_file()
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return tmp_path


def generate(project: Path, *args: str) -> subprocess.CompletedProcess:
    result = run("generate", *args, cwd=project)
    assert result.returncode == 0, result.stderr
    return result


def test_tunnel_mode_renders_every_file(project):
    out = generate(project, *TUNNEL_ARGS).stdout
    work = project / ".compose-tunnel"
    assert "profiles: base, cpu, livekit, garage, caddy, tunnel, tunnel-udp" in out
    assert "app: https://my-tunnel.example.com:9055" in out
    for name in ["compose.yml", ".env", "livekit.yaml", "egress.env", "caddy/Caddyfile",
                 "server.env", "www.env", "postgres.env", "hatchet.env", "garage.toml",
                 "secrets.toml", "config.toml"]:
        assert (work / name).is_file(), name

    livekit = yaml.safe_load((work / "livekit.yaml").read_text())
    assert livekit["rtc"] == {"tcp_port": 7881, "udp_port": 14139, "use_external_ip": False,
                              "node_ip": "203.0.113.9"}
    assert livekit["turn"] == {"enabled": False}
    (key, secret), = livekit["keys"].items()
    assert len(secret) >= 32

    server_env = (work / "server.env").read_text()
    assert "BASE_URL=https://my-tunnel.example.com:9055\n" in server_env
    assert "LIVEKIT_PUBLIC_URL=wss://my-tunnel.example.com:9055/lk-ws\n" in server_env
    assert "LIVEKIT_URL=ws://livekit-server:7880\n" in server_env
    assert f"LIVEKIT_API_KEY={key}\n" in server_env
    www_env = (work / "www.env").read_text()
    assert "API_URL=https://my-tunnel.example.com:9055\n" in www_env
    assert "SITE_URL=https://my-tunnel.example.com:9055\n" in www_env
    dotenv = (work / ".env").read_text()
    assert "LIVEKIT_UDP_PORT=14139\n" in dotenv and "LIVEKIT_UDP_LOCAL_PORT=14139\n" in dotenv

    # Secrets live only in files nobody else can read.
    for name in ["secrets.toml", "livekit.yaml", "egress.env", "server.env", "www.env",
                 "postgres.env", "hatchet.env", "garage.toml"]:
        assert stat.S_IMODE((work / name).stat().st_mode) == 0o600, name
    assert secret not in out


def test_real_compose_accepts_the_project_and_publishes_the_tunnel_port(project, compose_bin):
    generate(project, *TUNNEL_ARGS, "--tunnel-udp-local", "14140")
    work = project / ".compose-tunnel"
    config = subprocess.run(
        [compose_bin, "config", "--format", "json"], cwd=work, capture_output=True, text=True,
        env={"PATH": os.environ["PATH"]},
    )
    assert config.returncode == 0, config.stderr
    doc = json.loads(config.stdout)
    assert doc["name"] == "reflector"
    udp = [p for p in doc["services"]["livekit-server"]["ports"] if p["protocol"] == "udp"]
    assert udp == [{"mode": "ingress", "host_ip": "0.0.0.0", "target": 14139, "published": "14140",
                    "protocol": "udp"}]
    assert set(doc["services"]) == {"server", "worker", "beat", "web", "redis", "postgres",
                                    "livekit-server", "livekit-egress", "garage", "caddy", "hatchet",
                                    "hatchet-worker-llm", "hatchet-worker-cpu"}
    assert doc["services"]["server"]["environment"]["LIVEKIT_PUBLIC_URL"] == \
        "wss://my-tunnel.example.com:9055/lk-ws"
    # Egress gets its YAML through the environment, as Compose reads egress.env.
    egress = yaml.safe_load(doc["services"]["livekit-egress"]["environment"]["EGRESS_CONFIG_BODY"])
    livekit = yaml.safe_load((work / "livekit.yaml").read_text())
    assert {egress["api_key"]: egress["api_secret"]} == livekit["keys"]
    assert egress["ws_url"] == "ws://livekit-server:7880"
    assert egress["redis"] == {"address": "redis:6379"} and egress["health_port"] == 8080
    assert "volumes" not in doc["services"]["livekit-egress"]


def test_without_tunnels_livekit_uses_the_udp_range(project, compose_bin):
    generate(project, "--livekit")
    work = project / ".compose-tunnel"
    livekit = yaml.safe_load((work / "livekit.yaml").read_text())
    assert livekit["rtc"]["port_range_start"] == 44200 and livekit["rtc"]["port_range_end"] == 44300
    assert "udp_port" not in livekit["rtc"]
    doc = json.loads(subprocess.run(
        [compose_bin, "config", "--format", "json"], cwd=work, capture_output=True, text=True,
        check=True, env={"PATH": os.environ["PATH"]}).stdout)
    udp = [p for p in doc["services"]["livekit-server"]["ports"] if p["protocol"] == "udp"]
    # Compose expands the range into one mapping per port.
    assert [(p["target"], p["published"]) for p in udp] == [(n, str(n)) for n in range(44200, 44301)]
    assert "LIVEKIT_PUBLIC_URL=ws://localhost:7880\n" in (work / "server.env").read_text()


@pytest.mark.parametrize("args, site", [
    (TUNNEL_ARGS, ":443"),
    (["--livekit", "--ip", "203.0.113.7"], ":443"),
    (["--livekit", "--domain", "reflector.example.com"], "reflector.example.com"),
    (["--caddy"], ":443"),
])
def test_every_rendered_caddyfile_is_valid_for_real_caddy(project, caddy_bin, args, site):
    generate(project, *args)
    caddyfile = project / ".compose-tunnel" / "caddy" / "Caddyfile"
    assert caddyfile.read_text().splitlines()[1] == site + " {"
    check = subprocess.run([caddy_bin, "adapt", "--config", caddyfile, "--adapter", "caddyfile"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    routes = json.loads(check.stdout)["apps"]["http"]["servers"]["srv0"]["routes"]
    text = json.dumps(routes)
    assert '"/v1/*", "/health"' in text and "server:1250" in text and "web:3000" in text
    assert ('"strip_path_prefix": "/lk-ws"' in text) == ("--livekit" in args)
    if site == ":443":
        assert json.loads(check.stdout)["apps"]["tls"]["automation"]["policies"][0]["on_demand"]
    # Every upstream is retried while its containers are replaced (upgrade): no request lost.
    proxies = list(handlers(routes, "reverse_proxy"))
    assert len(proxies) == (3 if "--livekit" in args else 2)
    for proxy in proxies:
        assert proxy["load_balancing"]["try_duration"] == 10_000_000_000, proxy
        assert proxy["transport"]["dial_timeout"] == 500_000_000, proxy


def handlers(node, kind: str):
    """Every handler of `kind` in Caddy's JSON, however deeply its routes nest them."""
    if isinstance(node, dict):
        if node.get("handler") == kind:
            yield node
        for value in node.values():
            yield from handlers(value, kind)
    elif isinstance(node, list):
        for value in node:
            yield from handlers(value, kind)


def test_same_inputs_twice_give_byte_identical_files(project):
    generate(project, *TUNNEL_ARGS)
    first = snapshot(project / ".compose-tunnel")
    out = generate(project, *TUNNEL_ARGS).stdout
    assert snapshot(project / ".compose-tunnel") == first
    assert "(all up to date)" in out


def test_user_keys_in_env_files_survive_a_rerun(project):
    generate(project, *TUNNEL_ARGS)
    server_env = project / ".compose-tunnel" / "server.env"
    server_env.write_text("ZULIP_REALM=chat.example.com\n" + server_env.read_text())
    generate(project, "--no-garage", "--tunnels", "other.example.com:9100,203.0.113.9:14139")
    text = server_env.read_text()
    assert text.startswith("ZULIP_REALM=chat.example.com\n")
    assert "BASE_URL=https://other.example.com:9100\n" in text
    assert "GARAGE" not in text and "garage" not in (project / ".compose-tunnel/compose.yml").read_text()


def test_no_flags_replays_the_saved_configuration_and_reset_replaces_it(project):
    generate(project, *TUNNEL_ARGS)
    secrets = (project / ".compose-tunnel" / "secrets.toml").read_text()
    replay = generate(project)
    assert f"replaying saved configuration: --cpu --livekit --garage --tunnel-tcp {TCP} --tunnel-udp {UDP}" \
        in replay.stdout
    assert "tunnel-udp" in replay.stdout
    replaced = generate(project, "--reset", "--gpu", "--gpu-image", "gpu:1")
    assert "replaying" not in replaced.stdout
    assert "profiles: base, gpu\n" in replaced.stdout
    assert "replaying saved configuration: --gpu --gpu-image gpu:1" in generate(project).stdout
    assert (project / ".compose-tunnel" / "secrets.toml").read_text() == secrets


def test_env_variables_work_like_flags(project):
    result = run("generate", cwd=project, env={
        "COMPOSE_TUNNEL_LIVEKIT": "1", "COMPOSE_TUNNEL_TUNNELS": f"{TCP},{UDP}"})
    assert result.returncode == 0, result.stderr
    assert "tunnel-udp" in result.stdout and "replaying" not in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--tunnels", "my-tunnel.example.com"], "exactly two"),
    (["--tunnel-tcp", "bad_host!:9055"], "TCP tunnel"),
    (["--tunnels", f"{TCP},{UDP}", "--ip", "203.0.113.7", "--livekit"], "cannot be combined with --ip"),
    (["--cpu", "--gpu"], "conflict"),
    (["--no-livekit"], "requires profile 'livekit'"),
    (["--profile", "nope"], "unknown profile 'nope'"),
    (["--profiles-dir", "/nonexistent/profiles"], "does not exist"),
    (["--livekit", "--tunnels", f"{TCP},udp.invalid:14139", "--dns-timeout", "1"], "--node-ip"),
])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(project, args, message):
    generate(project, *TUNNEL_ARGS)
    before = snapshot(project / ".compose-tunnel")
    result = run("generate", *args, cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("compose-tunnel: error: "), result.stderr
    assert message in lines[0]
    assert "hint:" in lines[0]
    assert snapshot(project / ".compose-tunnel") == before


def test_unreadable_overlay_is_a_clear_error(project):
    user = project / "mine"
    user.mkdir()
    (user / "broken.yml").write_text("services:\n  web: [unclosed\n")
    result = run("generate", "--profiles-dir", str(user), "--profile", "broken", cwd=project)
    assert result.returncode == 2
    assert "broken.yml" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (project / ".compose-tunnel").exists()


def test_help_does_not_import_python_on_whales(project):
    code = (
        "import sys\n"
        "before = set(sys.modules)  # an editable install's finder imports pathlib at start-up\n"
        "from compose_tunnel.cli import main\n"
        "sys.argv = ['compose-tunnel', 'up', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'python_on_whales' not in sys.modules, 'imported python_on_whales'\n"
        "assert 'dns.resolver' not in sys.modules, 'imported dns.resolver'\n"
        "for name in ('shutil', 'pathlib', 'yaml'):  # a tenth of --help each, or more\n"
        "    assert name in before or name not in sys.modules, 'imported ' + name\n"
        "print('clean')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=project)
    assert result.returncode == 0, result.stderr
    assert "--tunnels TCP,UDP" in result.stdout and result.stdout.endswith("clean\n")


@pytest.mark.parametrize("columns", [None, "30", "60", "99", "100", "101", "150", "0", "abc"])
def test_help_width_is_what_click_picks_through_shutil(monkeypatch, columns):
    import shutil

    from compose_tunnel.cli import HELP_WIDTH_MOST, help_width

    monkeypatch.delenv("COLUMNS", raising=False)
    if columns is not None:
        monkeypatch.setenv("COLUMNS", columns)
    # click.formatting.HelpFormatter without a width, max_width=HELP_WIDTH_MOST:
    assert help_width() == max(min(shutil.get_terminal_size().columns, HELP_WIDTH_MOST) - 2, 50)


def test_generation_does_not_import_python_on_whales(project):
    code = (
        "import sys\n"
        "from compose_tunnel.cli import main\n"
        f"sys.argv = ['compose-tunnel', 'generate', *{TUNNEL_ARGS!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'python_on_whales' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=project)
    assert result.returncode == 0, result.stderr


def test_config_show_masks_secrets_and_reset_forgets(project):
    generate(project, *TUNNEL_ARGS)
    secrets = (project / ".compose-tunnel" / "secrets.toml").read_text()
    shown = run("config", "show", "--json", cwd=project)
    data = json.loads(shown.stdout)
    assert data["settings"]["tunnel_tcp"] == TCP
    assert set(data["secrets"].values()) == {"********"}
    for line in secrets.splitlines()[1:]:
        value = line.split("=", 1)[1].strip().strip('"')
        assert value not in shown.stdout
    assert "forgot" in run("config", "reset", cwd=project).stdout
    assert "no saved configuration" in run("config", "show", cwd=project).stdout


def test_profiles_command_lists_sources_and_relations(project):
    user = project / "mine"
    user.mkdir()
    (user / "metrics.yml").write_text("services: {}\n")
    out = run("profiles", "--profiles-dir", str(user), cwd=project).stdout
    assert "tunnel-udp" in out and "requires: livekit" in out and "conflicts: gpu" in out
    assert f"source: {user}" in out and "source: built-in" in out


def test_up_dry_run_prints_files_and_the_compose_command_and_changes_nothing(project):
    result = run("up", "--dry-run", "--build", "--pull", "never", *TUNNEL_ARGS, cwd=project)
    assert result.returncode == 0, result.stderr
    work = (project / ".compose-tunnel").absolute()
    assert "would write in .compose-tunnel: .env, caddy/Caddyfile, compose.yml" in result.stdout
    compose_up = (f"would run: docker compose --project-name reflector --project-directory {work} "
                  f"--file {work}/compose.yml --env-file {work}/.env up --detach --remove-orphans "
                  "--build --pull never")
    lines = result.stdout.splitlines()
    # Garage and Postgres start together and are bootstrapped (Garage's key, Hatchet's
    # database), then Hatchet (its token), before the services that use their results start,
    # all together, last. What uses no result and waits for no health (Redis) starts alongside
    # the bootstraps; LiveKit waits for Redis's health, so it starts with the rest.
    first = lines.index(compose_up + " garage postgres")
    assert lines[first + 1] == compose_up + " redis  (alongside the bootstraps)"
    assert lines[first + 2].startswith("would bootstrap Garage")
    assert lines[first + 3] == "would create the hatchet database in Postgres if it is missing"
    # Postgres is ready by then: Compose need not check it again (--no-deps), nor, last, what
    # the rest depend on, all started and ready by then.
    assert lines[first + 4] == compose_up + " --no-deps hatchet"
    assert lines[first + 5].startswith("would create a Hatchet client token")
    assert lines[first + 6] == (compose_up + " --no-deps server worker beat hatchet-worker-llm web "
                                "hatchet-worker-cpu livekit-server livekit-egress caddy")
    assert not (project / ".compose-tunnel").exists()


def test_hatchet_runs_in_every_stack_with_loopback_ports_and_its_clients_configured(project, compose_bin):
    """The workflow engine, as upstream deploys it, except its plain-HTTP ports stay on loopback."""
    out = generate(project, "--cpu").stdout
    assert "HATCHET_CLIENT_TOKEN" in out and "compose-tunnel up" in out  # the token comes with up
    work = project / ".compose-tunnel"
    doc = json.loads(subprocess.run(
        [compose_bin, "config", "--format", "json"], cwd=work, capture_output=True, text=True,
        check=True, env={"PATH": os.environ["PATH"]}).stdout)
    services = doc["services"]
    assert {"hatchet", "hatchet-worker-llm"} <= set(services)
    assert "hatchet-worker-cpu" not in services  # only with LiveKit
    hatchet = services["hatchet"]
    assert hatchet["image"] == "ghcr.io/hatchet-dev/hatchet/hatchet-lite:latest"
    assert [(p["host_ip"], p["published"], p["target"]) for p in hatchet["ports"]] == [
        ("127.0.0.1", "8888", 8888), ("127.0.0.1", "7078", 7077)]
    assert hatchet["healthcheck"]["test"] == ["CMD", "curl", "-f", "http://localhost:8888/api/live"]
    assert hatchet["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert hatchet["restart"] == "on-failure"
    assert {"type": "volume", "source": "hatchet_config", "target": "/config", "volume": {}} in hatchet["volumes"]
    password = (work / "postgres.env").read_text().split("POSTGRES_PASSWORD=")[1].split()[0]
    env = hatchet["environment"]
    assert env["DATABASE_URL"] == (f"postgresql://reflector:{password}@postgres:5432/hatchet"
                                   "?sslmode=disable&connect_timeout=30")
    assert env["SERVER_URL"] == "http://localhost:8888" and env["SERVER_AUTH_COOKIE_DOMAIN"] == "localhost"
    assert env["SERVER_GRPC_BROADCAST_ADDRESS"] == "hatchet:7077" and env["SERVER_GRPC_INSECURE"] == "t"
    assert env["SERVER_INTERNAL_CLIENT_INTERNAL_GRPC_BROADCAST_ADDRESS"] == "hatchet:7077"
    assert services["postgres"]["command"] == ["postgres", "-c", "max_connections=200"]
    for name in ("server", "worker", "hatchet-worker-llm"):
        client = services[name]["environment"]
        assert client["HATCHET_CLIENT_SERVER_URL"] == "http://hatchet:8888", name
        assert client["HATCHET_CLIENT_HOST_PORT"] == "hatchet:7077", name
        assert client["HATCHET_CLIENT_TLS_STRATEGY"] == "none", name
    assert services["hatchet-worker-llm"]["environment"]["ENTRYPOINT"] == "hatchet-worker-llm"
    assert services["hatchet-worker-llm"]["depends_on"]["hatchet"]["condition"] == "service_healthy"
    # Nothing Hatchet publishes is reachable from outside this machine.
    for service in services.values():
        for port in service.get("ports", []):
            if port["target"] in (8888, 7077):
                assert port["host_ip"] == "127.0.0.1"


def test_with_livekit_the_hatchet_cpu_worker_runs_too(project, compose_bin):
    generate(project, "--cpu", "--livekit")
    doc = json.loads(subprocess.run(
        [compose_bin, "config", "--format", "json"], cwd=project / ".compose-tunnel",
        capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]}).stdout)
    worker = doc["services"]["hatchet-worker-cpu"]
    assert worker["environment"]["ENTRYPOINT"] == "hatchet-worker-cpu"
    assert worker["environment"]["HATCHET_CLIENT_HOST_PORT"] == "hatchet:7077"
    assert worker["depends_on"]["hatchet"]["condition"] == "service_healthy"


def test_a_stored_hatchet_token_reaches_server_env_and_is_masked(project):
    generate(project, "--cpu")
    secrets = project / ".compose-tunnel" / "secrets.toml"
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ0In0.c2lnbmF0dXJl"
    secrets.write_text(secrets.read_text() + f'hatchet_token = "{token}"\n')
    out = generate(project).stdout
    assert "HATCHET_CLIENT_TOKEN" not in out  # no note: the token exists
    assert f"HATCHET_CLIENT_TOKEN={token}\n" in (project / ".compose-tunnel" / "server.env").read_text()
    shown = run("config", "show", cwd=project).stdout
    assert "hatchet_token" in shown and token not in shown
