"""Flags change the saved configuration; they do not replace it (issue 10, configuration semantics)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from compose_tunnel.change import Change, apply_change, change_from_options, describe_change, secret_options
from compose_tunnel.errors import UserError
from compose_tunnel.settings import Settings

from test_generate import run

TUNNELS = "my-tunnel.example.com:9055,203.0.113.9:14139"
SAVED = Settings.from_options({"profiles": ["cpu", "livekit", "garage"], "tunnels": TUNNELS,
                               "llm_url": "https://llm.example.com/v1", "llm_model": "gpt-4o-mini"})


def change(saved: Settings | None = SAVED, **kwargs) -> tuple[dict, list[str]]:
    new = apply_change(saved, Change(**kwargs))
    return new.to_options(), describe_change(saved, new)


def test_an_unrelated_option_keeps_everything_else():
    options, lines = change(given={"dns_server": "1.1.1.1"})
    assert options == {**SAVED.to_options(), "dns_server": "1.1.1.1"}
    assert lines == ["dns_server: (none) -> 1.1.1.1"]
    options, lines = change(given={"project_name": "meetings"})
    assert options["tunnel_tcp"] == "my-tunnel.example.com:9055" and lines == [
        "project_name: (none) -> meetings"]


def test_no_flags_turn_saved_profiles_off():
    options, lines = change(profiles_off=("livekit", "garage"))
    assert options["profiles"] == ["cpu"] and lines == ["- livekit", "- garage"]
    with pytest.raises(UserError, match="--livekit and --no-livekit both given"):
        change(given={"profiles": ["livekit"]}, profiles_off=("livekit",))


def test_an_address_replaces_the_other_kind():
    options, lines = change(given={"ip": "203.0.113.7"})
    assert options["ip"] == "203.0.113.7" and "tunnel_tcp" not in options and "tunnel_udp" not in options
    assert "tunnel_tcp: my-tunnel.example.com:9055 -> (none)" in lines and "+ caddy" not in lines
    back, _ = change(Settings.from_options(options), given={"tunnels": "a.example.com:1,b.example.com:2"})
    assert "ip" not in back and back["tunnel_tcp"] == "a.example.com:1"


def test_one_tunnel_changes_alone():
    saved = Settings.from_options({"tunnels": TUNNELS, "tunnel_udp_local": 14140})
    options, lines = change(saved, given={"tunnel_udp": "udp.example.com:2000"})
    assert options["tunnel_tcp"] == "my-tunnel.example.com:9055"
    assert options["tunnel_udp"] == "udp.example.com:2000" and "tunnel_udp_local" not in options
    assert lines == ["tunnel_udp: 203.0.113.9:14139 -> udp.example.com:2000",
                     "tunnel_udp_local: 14140 -> (none)"]


def test_an_ml_mode_replaces_the_others_and_what_belonged_to_them():
    saved = Settings.from_options({"profiles": ["cpu"], "transcript": "whisper"})
    options, lines = change(saved, given={"hosted_url": "https://gpu.example.com", "diarization": "modal"})
    assert options["profiles"] == [] if "profiles" in options else True
    assert "transcript" not in options and options["diarization"] == "modal"
    assert "- cpu" in lines
    gpu = Settings.from_options({"profiles": ["gpu"], "gpu_image": "me/gpu:1", "translation": "passthrough"})
    options, _ = change(gpu, given={"profiles": ["cpu"]})
    assert options == {"profiles": ["cpu"]}
    same_mode, _ = change(gpu, given={"gpu_image": "me/gpu:2"})
    assert same_mode["translation"] == "passthrough"


def test_an_llm_source_replaces_the_other_and_its_model():
    options, lines = change(given={"profiles": ["ollama-cpu"]})
    assert "llm_url" not in options and "llm_model" not in options
    assert "+ ollama-cpu" in lines and "llm_model: gpt-4o-mini -> (none)" in lines
    kept, _ = change(given={"llm_url": "https://other.example.com/v1"})
    assert kept["llm_model"] == "gpt-4o-mini"


def test_password_auth_on_and_off():
    saved = Settings.from_options({"auth": "password", "admin_email": "me@example.com"})
    options, lines = change(saved, public=True)
    assert options == {} and lines == ["auth: password -> (none)", "admin_email: me@example.com -> (none)"]
    with pytest.raises(UserError, match="--password and --no-password"):
        change(saved, given={"auth": "password"}, public=True)


def test_reset_starts_from_the_defaults():
    options, lines = change(given={"profiles": ["cpu"]}, reset=True)
    assert options == {"profiles": ["cpu"]}
    assert "- livekit" in lines and "llm_url: https://llm.example.com/v1 -> (none)" in lines


def test_nothing_saved_is_the_defaults():
    options, lines = change(None, given={"profiles": ["cpu"]})
    assert options == {"profiles": ["cpu"]} and lines == ["+ cpu"]


def saved_config(project: Path) -> dict:
    return tomllib.loads((project / ".compose-tunnel/config.toml").read_text())["settings"]


def test_cli_flags_and_variables_change_the_saved_configuration(tmp_path):
    first = run("generate", "--cpu", "--livekit", "--garage", "--tunnels", TUNNELS, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "configuration: + cpu; + livekit; + garage" in first.stdout
    saved = saved_config(tmp_path)

    # The README's DNS fix, as a variable: the tunnel stack stays a tunnel stack.
    dns = run("generate", cwd=tmp_path, env={"COMPOSE_TUNNEL_DNS_SERVER": "127.0.0.1:1"})
    assert dns.returncode == 0, dns.stderr
    assert "configuration: dns_server: (none) -> 127.0.0.1:1" in dns.stdout
    assert saved_config(tmp_path) == {**saved, "dns_server": "127.0.0.1:1"}

    off = run("generate", "--no-garage", "-p", "meetings", cwd=tmp_path)
    assert off.returncode == 0, off.stderr
    assert "configuration: - garage; project_name: (none) -> meetings" in off.stdout
    assert saved_config(tmp_path)["profiles"] == ["cpu", "livekit"]
    assert saved_config(tmp_path)["tunnel_tcp"] == "my-tunnel.example.com:9055"

    replay = run("generate", cwd=tmp_path)
    assert "replaying saved configuration: --cpu --livekit --tunnel-tcp my-tunnel.example.com:9055" in replay.stdout
    assert not any(line.startswith("configuration:") for line in replay.stdout.splitlines())

    reset = run("generate", "--reset", "--cpu", cwd=tmp_path)
    assert reset.returncode == 0, reset.stderr
    assert saved_config(tmp_path) == {"profiles": ["cpu"]}


def test_cli_refuses_a_change_that_contradicts_itself_and_writes_nothing(tmp_path):
    assert run("generate", "--cpu", cwd=tmp_path).returncode == 0
    before = (tmp_path / ".compose-tunnel/config.toml").read_bytes()
    both = run("generate", "--profile", "livekit", "--no-profile", "livekit", cwd=tmp_path)
    assert both.returncode == 2 and "--livekit and --no-livekit both given" in both.stderr
    udp = run("generate", "--tunnels", TUNNELS, "--livekit", cwd=tmp_path)
    assert udp.returncode == 0, udp.stderr
    before = (tmp_path / ".compose-tunnel/config.toml").read_bytes()
    needed = run("generate", "--no-livekit", cwd=tmp_path)  # the UDP tunnel carries LiveKit media
    assert needed.returncode == 2 and "requires profile 'livekit', which is off" in needed.stderr
    assert (tmp_path / ".compose-tunnel/config.toml").read_bytes() == before


def test_run_only_options_are_not_settings():
    from compose_tunnel.options import CONFIG_PARAMS

    assert not {"dry_run", "pull", "build", "wait_timeout", "workdir"} & set(CONFIG_PARAMS)
    assert not {"password", "password_file", "hf_token", "llm_api_key", "hosted_api_key", "adopt"} & set(CONFIG_PARAMS)


def test_the_options_given_read_into_a_change_without_click(tmp_path):
    """What the command line hands over (the options given, by parameter) is read in `change`."""
    assert change_from_options({}) == Change() and Change().empty
    assert change_from_options({"cpu": True, "ollama_cpu": True, "livekit": False, "profile_names": ("x",),
                                "profiles_off": ("garage",), "swarm": False, "scale": ("worker=2",),
                                "profiles_dirs": (tmp_path,), "no_password": True}) == Change(
        given={"target": "compose", "scale": ["worker=2"], "profiles_dirs": [str(tmp_path)],
               "profiles": ["cpu", "ollama-cpu", "x"]},
        profiles_off=("livekit", "garage"), public=True)
    with pytest.raises(UserError, match="^--project-name is empty "):
        change_from_options({"project_name": ""})
    with pytest.raises(UserError, match="^--profile is empty "):
        change_from_options({"profile_names": ("a", "")})


def test_secret_options_read_the_password_or_ask_for_it(tmp_path):
    assert secret_options({"hf_token": "hf_1", "llm_api_key": None}, None) == {"hf_token": "hf_1"}
    (tmp_path / "pass").write_text("long-enough\n")
    assert secret_options({"password_file": tmp_path / "pass"}, None) == {"password": "long-enough"}
    assert secret_options({"password": "\0ask"}, lambda: "asked-for-it") == {"password": "asked-for-it"}
    with pytest.raises(UserError, match="no terminal to ask on"):
        secret_options({"password": "\0ask"}, None)
    with pytest.raises(UserError, match="shorter than 8 characters"):
        secret_options({"password": "short"}, None)


def test_the_secrets_scan_catches_a_leak(tmp_path, secrets_never_printed):
    """The suite-wide scan (conftest) fails a run that prints a secret of its workdir."""
    import subprocess
    import sys

    assert run("generate", "--cpu", cwd=tmp_path).returncode == 0
    leak = [sys.executable, "-m", "compose_tunnel", "config", "show", "--json"]
    shown = subprocess.run(leak, cwd=tmp_path, capture_output=True, text=True)
    assert shown.returncode == 0  # masked: no leak
    printer = tmp_path / "compose_tunnel_leak.py"
    printer.write_text("import sys; print(open('.compose-tunnel/secrets.toml').read())")
    with pytest.raises(AssertionError, match="printed a secret"):
        subprocess.run([sys.executable, str(printer), "compose_tunnel"], cwd=tmp_path,
                       capture_output=True, text=True)
    assert secrets_never_printed["runs"] >= 2
