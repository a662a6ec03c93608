"""Habits of the interface in use: `make` users get hints in make's words, the docker CLI plugin's
users in `docker tunnel`'s; Compose users' -p."""

from __future__ import annotations

import pytest

from compose_tunnel.commands.common import for_interface

from test_generate import run


@pytest.mark.parametrize(("hint", "expected"), [
    ("add --tunnel-tcp HOST:PORT, or give both with --tunnels TCP,UDP",
     'add ARGS="--tunnel-tcp HOST:PORT", or give both with TUNNELS=TCP,UDP'),
    ("pass --node-ip IP with the tunnel's public IPv4 address",
     'pass ARGS="--node-ip IP" with the tunnel\'s public IPv4 address'),
    ("run `compose-tunnel up` first, or pass the --workdir you used",
     "run `make up` first, or pass the WORKDIR you used"),
    ("add --password", 'add ARGS="--password"'),
    ("--transcript whisper | modal", 'ARGS="--transcript whisper" | modal'),
    ("check the network and the image names, or pass --no-pull", 'check the network and the image '
     'names, or pass ARGS="--no-pull"'),
    ("see `compose-tunnel config show`", "see `make config`"),
    ("run `compose-tunnel doctor`", "run `make doctor`"),
    ("`compose-tunnel service install` installs it", "`make service` installs it"),
])
def test_hints_for_make_users(monkeypatch, hint, expected):
    monkeypatch.setenv("COMPOSE_TUNNEL_VIA", "make")
    assert for_interface(hint) == expected
    monkeypatch.delenv("COMPOSE_TUNNEL_VIA")
    assert for_interface(hint) == hint


@pytest.mark.parametrize(("hint", "expected"), [
    ("run `compose-tunnel up` first, or pass the --workdir you used",
     "run `docker tunnel up` first, or pass the --workdir you used"),
    ("`compose-tunnel logs caddy` shows why; `compose-tunnel up` starts it",
     "`docker tunnel logs caddy` shows why; `docker tunnel up` starts it"),
    ("check the permissions of .compose-tunnel/", "check the permissions of .compose-tunnel/"),
])
def test_hints_for_docker_plugin_users(monkeypatch, hint, expected):
    """Through the docker CLI plugin (docker-tunnel sets COMPOSE_TUNNEL_VIA=docker)."""
    monkeypatch.setenv("COMPOSE_TUNNEL_VIA", "docker")
    assert for_interface(hint) == expected


def test_a_make_user_sees_make_words_end_to_end(tmp_path):
    plain = run("generate", "--tunnel-udp", "udp.example.com:14139", cwd=tmp_path)
    via_make = run("generate", "--tunnel-udp", "udp.example.com:14139", cwd=tmp_path,
                   env={"COMPOSE_TUNNEL_VIA": "make"})
    assert plain.returncode == via_make.returncode == 2
    assert "hint: add --tunnel-tcp HOST:PORT, or give both with --tunnels TCP,UDP" in plain.stderr
    assert 'hint: add ARGS="--tunnel-tcp HOST:PORT", or give both with TUNNELS=TCP,UDP' in via_make.stderr


def test_project_name_as_compose_users_give_it(tmp_path):
    short = run("generate", "-p", "meetings", cwd=tmp_path)
    assert short.returncode == 0, short.stderr
    assert "project_name: (none) -> meetings" in short.stdout
    compose_variable = run("generate", cwd=tmp_path, env={"COMPOSE_PROJECT_NAME": "standup"})
    assert compose_variable.returncode == 0, compose_variable.stderr
    assert "project_name: meetings -> standup" in compose_variable.stdout
    ours_first = run("generate", cwd=tmp_path, env={"COMPOSE_PROJECT_NAME": "standup",
                                                    "COMPOSE_TUNNEL_PROJECT_NAME": "retro"})
    assert "project_name: standup -> retro" in ours_first.stdout


def test_the_value_flags_make_words_know_are_those_of_up():
    """The table-made list of up's value flags (for hints in make's words) is what Click has."""
    import click

    from compose_tunnel.commands.common import up_value_flags
    from compose_tunnel.commands.lifecycle import up

    from_click = {name: tuple(getattr(param.type, "choices", None) or ()) for param in up.params
                  if isinstance(param, click.Option) and not param.is_flag for name in param.opts}
    assert up_value_flags() == from_click
