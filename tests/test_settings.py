"""Settings: the flag rules of tunnel-setup.md, and a lossless saved form."""

from __future__ import annotations

import pytest

from compose_tunnel.errors import UserError
from compose_tunnel.settings import Settings

TCP, UDP = "my-tunnel.example.com:9055", "udp-host.example.com:14139"


def test_tunnels_flag_and_separate_flags_mean_the_same():
    joined = Settings.from_options({"tunnels": f" {TCP} , {UDP} ", "profiles": ["livekit"]})
    separate = Settings.from_options({"tunnel_tcp": TCP, "tunnel_udp": UDP, "profiles": ["livekit"]})
    assert joined == separate
    assert str(joined.tunnel_tcp) == TCP and joined.tunnel_udp.port == 14139


def test_tunnel_flags_imply_caddy_and_select_tunnel_profiles():
    settings = Settings.from_options({"tunnels": f"{TCP},{UDP}", "profiles": ["cpu", "livekit"]})
    assert settings.mode == "tunnel"
    assert settings.requested_profiles() == ["cpu", "livekit", "tunnel", "tunnel-udp"]


@pytest.mark.parametrize("options, message", [
    ({"tunnels": f"{TCP},{UDP}", "ip": "203.0.113.7"}, "cannot be combined with --ip"),
    ({"tunnel_tcp": TCP, "domain": "example.com"}, "cannot be combined with --domain"),
    ({"ip": "203.0.113.7", "domain": "example.com"}, "--ip and --domain exclude each other"),
    ({"tunnels": f"{TCP},{UDP}", "tunnel_tcp": TCP}, "--tunnels cannot be combined"),
    ({"tunnel_udp": UDP}, "a UDP tunnel needs a TCP tunnel too"),
    ({"tunnel_tcp": TCP, "tunnel_udp_local": 14140}, "--tunnel-udp-local needs a UDP tunnel"),
    ({"tunnels": f"{TCP},{UDP}", "tunnel_udp_local": 70000}, "is not a port"),
    ({"ip": "300.1.1.1"}, "is not an IP address"),
    ({"project_name": "My Stack"}, "invalid project name"),
    ({"dns_timeout": 0}, "out of range"),
    ({"tunnel_tcp": "https://my-tunnel.example.com:9055"}, "TCP tunnel"),
    ({"tunnel_tcp": "my-tunnel.example.com"}, "TCP tunnel"),
    ({"tunnels": TCP}, ""),
])
def test_invalid_combinations_are_one_clear_error(options, message):
    with pytest.raises(UserError) as error:
        Settings.from_options(options)
    assert message in error.value.message
    assert "\n" not in str(error.value)


def test_saved_form_round_trips_and_replays_as_flags(tmp_path):
    settings = Settings.from_options({
        "tunnels": f"{TCP},{UDP}", "profiles": ["cpu", "livekit", "garage", "metrics"],
        "tunnel_udp_local": "14140", "dns_server": "1.1.1.1", "profiles_dirs": [str(tmp_path)],
    })
    assert Settings.from_options(settings.to_options()) == settings
    assert settings.to_args() == [
        "--cpu", "--livekit", "--garage", "--profile", "metrics",
        "--tunnel-tcp", TCP, "--tunnel-udp", UDP, "--tunnel-udp-local", "14140",
        "--dns-server", "1.1.1.1", "--profiles-dir", str(tmp_path),
    ]


def test_defaults_are_local_mode_without_profiles():
    settings = Settings.from_options({})
    assert settings.mode == "local" and settings.requested_profiles() == []
    assert settings.to_options() == {}
