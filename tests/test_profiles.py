"""Profiles: built-in manifest, user directories, and the relation rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from compose_tunnel.errors import UserError
from compose_tunnel.profiles import BUILTIN_SOURCE, builtin_dir, load_catalog


def names(profiles):
    return [p.name for p in profiles]


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def test_builtin_profiles_have_overlays_descriptions_and_documented_order():
    catalog = load_catalog()
    assert list(catalog.profiles) == [
        "base", "cpu", "gpu", "gpu-build", "hosted", "ollama-cpu", "ollama-gpu", "livekit", "garage",
        "caddy", "tunnel", "tunnel-udp"]
    for profile in catalog.profiles.values():
        assert profile.description
        assert profile.sources == [BUILTIN_SOURCE]
        assert profile.overlays == [builtin_dir() / f"{profile.name}.yml"]


def test_merge_order_is_stable_whatever_order_was_typed():
    catalog = load_catalog()
    assert names(catalog.resolve(["garage", "livekit", "cpu"])) == ["base", "cpu", "livekit", "garage"]
    assert names(catalog.resolve(["cpu", "garage", "livekit"])) == ["base", "cpu", "livekit", "garage"]


def test_tunnel_implies_caddy_and_udp_tunnel_implies_tunnel():
    catalog = load_catalog()
    assert names(catalog.resolve(["livekit", "tunnel-udp"])) == [
        "base", "livekit", "caddy", "tunnel", "tunnel-udp"]


def test_cpu_and_gpu_conflict():
    with pytest.raises(UserError, match="'cpu' \\(requested\\) and 'gpu' \\(requested\\) conflict"):
        load_catalog().resolve(["cpu", "gpu"])


def test_udp_tunnel_requires_livekit_and_says_which_flag_adds_it():
    with pytest.raises(UserError) as error:
        load_catalog().resolve(["tunnel-udp"])
    assert "'tunnel-udp' (requested) requires profile 'livekit'" in error.value.message
    assert error.value.hint == "add --livekit"


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(UserError) as error:
        load_catalog().resolve(["nope"])
    assert "unknown profile 'nope'" in error.value.message
    assert "cpu" in error.value.hint


def test_user_dir_adds_a_profile_from_a_bare_overlay(tmp_path):
    user = write(tmp_path / "mine", {"metrics.yml": "services: {}\n"})
    catalog = load_catalog([user])
    assert list(catalog.profiles)[-1] == "metrics"
    assert catalog.profiles["metrics"].sources == [str(user)]
    assert names(catalog.resolve(["metrics"])) == ["base", "metrics"]


def test_user_dir_extends_a_builtin_profile_after_the_builtin_overlay(tmp_path):
    user = write(tmp_path / "mine", {
        "livekit.yml": "services: {}\n",
        "profiles.toml": '[livekit]\nimplies = ["garage"]\n',
    })
    livekit = load_catalog([user]).profiles["livekit"]
    assert livekit.overlays == [builtin_dir() / "livekit.yml", user / "livekit.yml"]
    assert livekit.sources == [BUILTIN_SOURCE, str(user)]
    assert livekit.description  # kept from the built-in manifest
    assert names(load_catalog([user]).resolve(["livekit"])) == ["base", "livekit", "garage"]


def test_implication_cycle_names_the_profiles(tmp_path):
    user = write(tmp_path / "mine", {"profiles.toml": '[a]\nimplies = ["b"]\n[b]\nimplies = ["a"]\n'})
    with pytest.raises(UserError, match="cycle: a -> b -> a"):
        load_catalog([user]).resolve(["a"])


def test_implying_an_unknown_profile_names_the_referrer(tmp_path):
    user = write(tmp_path / "mine", {"profiles.toml": '[a]\nimplies = ["ghost"]\n'})
    with pytest.raises(UserError, match="unknown profile 'ghost' \\(named by 'a'\\)"):
        load_catalog([user]).resolve(["a"])


@pytest.mark.parametrize("manifest, message", [
    ("[a\n", "invalid TOML"),
    ('[a]\nimplies = "b"\n', "implies must be a list"),
    ('[a]\nwants = ["b"]\n', "unknown key(s) wants"),
    ("a = 1\n", "must be a table"),
])
def test_bad_manifests_are_clear_errors(tmp_path, manifest, message):
    user = write(tmp_path / "mine", {"profiles.toml": manifest})
    with pytest.raises(UserError) as error:
        load_catalog([user])
    assert message in error.value.message
    assert str(user / "profiles.toml") in error.value.message


def test_missing_profiles_dir_is_an_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_catalog([tmp_path / "absent"])
