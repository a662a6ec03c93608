"""Compose validation: each file against the Compose schema, the merged project's references,
hostile YAML; errors as one line with file:line:column, the YAML path and a suggestion."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from compose_tunnel.errors import UserError
from compose_tunnel.merge import merge_files
from compose_tunnel.profiles import builtin_dir, load_catalog
from compose_tunnel.schema import schema_version
from compose_tunnel.validate import position
from compose_tunnel.yamlio import load_compose_text

TUNNEL_ARGS = ["--cpu", "--livekit", "--garage", "--tunnels",
               "my-tunnel.example.com:9055,203.0.113.9:14139", "--lan-ip", "192.0.2.1"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    return subprocess.run([sys.executable, "-m", "compose_tunnel", *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=60)


def builtin_plans() -> list[tuple[str, ...]]:
    """Every set of built-in profiles a plan can merge (each subset the catalog resolves)."""
    import itertools

    catalog = load_catalog()
    names = [name for name in catalog.profiles if name != "base"]
    plans = set()
    for size in range(len(names) + 1):
        for chosen in itertools.combinations(names, size):
            try:
                plans.add(tuple(p.name for p in catalog.resolve(chosen)))
            except UserError:
                continue
    return sorted(plans)


def test_every_combination_of_builtin_profiles_is_a_valid_project():
    """What lets `generate` skip validating the built-in profiles at run time: every plan they
    can make is validated here as a user's files are (after each file, then whole)."""
    plans = builtin_plans()
    assert len(plans) > 50
    for plan in plans:
        files = [builtin_dir() / f"{name}.yml" for name in plan]
        merge_files(files, reference_dir=lambda path: path.parent)


def overlay_dir(tmp_path: Path, text: str) -> Path:
    directory = tmp_path / "mine"
    directory.mkdir()
    (directory / "extra.yml").write_text(text)
    return directory


def test_a_typo_in_a_user_overlay_points_at_its_line_and_suggests_the_key(tmp_path):
    mine = overlay_dir(tmp_path, "services:\n  web:\n    enviroment:\n      A: '1'\n")
    result = run("generate", *TUNNEL_ARGS, "--profiles-dir", str(mine), "--profile", "extra", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"compose-tunnel: error: {mine}/extra.yml:3:5: services.web additional properties 'enviroment' "
        "not allowed (did you mean 'environment'?) (hint: the Compose file reference lists the keys "
        "and types each place takes)"]
    assert not (tmp_path / ".compose-tunnel").exists()


def test_merge_rejects_what_compose_rejects_with_the_position_in_the_right_file(tmp_path):
    (tmp_path / "a.yml").write_text("services:\n  web:\n    image: nginx\n")
    (tmp_path / "b.yml").write_text("services:\n  web:\n    ports: 'abc'\n")
    result = run("merge", "a.yml", "b.yml", "-o", "out.yml", cwd=tmp_path)
    assert result.returncode == 2
    assert "b.yml:3:5: services.web.ports must be a array" in result.stderr
    assert not (tmp_path / "out.yml").exists()


def test_a_reference_broken_by_a_later_overlay_points_at_the_reference(tmp_path):
    (tmp_path / "a.yml").write_text("services:\n  web:\n    image: nginx\n    depends_on: [db]\n"
                                    "  db:\n    image: postgres\n")
    (tmp_path / "b.yml").write_text("services:\n  db: !reset null\n")
    result = run("merge", "a.yml", "b.yml", cwd=tmp_path)
    assert result.returncode == 2
    assert 'error: a.yml:4:5: service "web" depends on undefined service "db": invalid compose project' \
        in result.stderr


def test_an_alias_bomb_is_refused_quickly_in_little_memory(tmp_path):
    lines, previous = ["x-a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"], "a"
    for level in range(1, 10):
        lines.append(f"x-a{level}: &a{level} [" + ", ".join([f"*{previous}"] * 10) + "]")
        previous = f"a{level}"
    text = "\n".join(lines + ["services:\n  web:\n    image: nginx\n    labels: *a9\n"])
    tracemalloc.start()
    with pytest.raises(UserError, match="aliases expand to more than 1,000,000 nodes"):
        load_compose_text(text, "bomb.yml")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 << 20  # the expansion is counted, never built


def test_position_follows_merge_keys_and_sequences():
    text = "x-base: &base\n  image: nginx\n  ports:\n    - '80:80'\nservices:\n  web:\n    <<: *base\n"
    assert position(text, ["services", "web", "image"]) == (2, 3)
    assert position(text, ["services", "web", "ports", 0]) == (4, 7)
    assert position(text, ["services", "nothere", "x"]) == (5, 1)


def test_generate_of_builtin_profiles_does_not_load_the_validator(tmp_path):
    code = ("import sys\nfrom compose_tunnel.cli import main\n"
            f"sys.argv = ['compose-tunnel', 'generate', *{TUNNEL_ARGS!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "assert 'jsonschema' not in sys.modules, 'validated the built-in profiles at run time'\n"
            "assert 'compose_tunnel.model' not in sys.modules, 'modelled the built-in profiles'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_version_names_the_schema():
    assert schema_version().startswith("Compose Specification schema from check-jsonschema ")
    out = run("--version", cwd=Path.cwd()).stdout
    assert out.startswith("compose-tunnel ") and "sha256" in out


def test_the_fast_validator_decides_only_what_it_can():
    """jsonschema-rs answers `valid` fast; a value it cannot take, or a refusal, goes to jsonschema,
    which gives Compose's error (and drops one about a value that holds a variable)."""
    import datetime as dt

    from compose_tunnel.schema import _fast_validator, first_error

    assert _fast_validator() is not None
    assert first_error({"services": {"web": {"image": "x"}}}) is None
    odd = {"services": {"web": {"image": "x", "labels": {"when": dt.date(2001, 12, 14)}}}}
    error = first_error(odd)  # no exception from the fast path: Compose refuses a YAML timestamp
    assert error.message == "services.web.labels.when invalid jsonType time.Time"
    error = first_error({"services": {"web": {"image": 5}}})
    assert error is not None and list(error.path) == ["services", "web", "image"]
    assert error.message == "services.web.image must be a string"
    assert first_error({"services": {"web": {"image": "x", "scale": "${N}"}}}) is None
