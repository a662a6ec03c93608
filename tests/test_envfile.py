"""Env files shared by the tool and the user."""

import json
import os
import subprocess

from compose_tunnel import envfile


def test_new_file_gets_a_marked_section():
    text = envfile.update(None, {"A": "1", "B": "two"}, owned=["A", "B", "C"])
    assert text == f"{envfile.MANAGED_HEADER}\nA=1\nB=two\n"


def test_user_lines_survive_in_place_and_tool_keys_update_in_place():
    existing = "# mine\nMY_TOKEN=abc\nA=old\n\nLLM_URL=http://x\n"
    text = envfile.update(existing, {"A": "new"}, owned=["A"])
    assert text == "# mine\nMY_TOKEN=abc\nA=new\n\nLLM_URL=http://x\n"


def test_owned_keys_that_no_longer_apply_are_removed_user_keys_never():
    existing = "A=1\nB=2\nUSER=3\n"
    assert envfile.update(existing, {"A": "1"}, owned=["A", "B"]) == "A=1\nUSER=3\n"


def test_update_is_idempotent():
    once = envfile.update("X=1\n", {"A": "a b", "B": "p$ss"}, owned=["A", "B"])
    assert envfile.update(once, {"A": "a b", "B": "p$ss"}, owned=["A", "B"]) == once


def test_real_compose_reads_back_the_exact_values(tmp_path, compose_bin):
    """$ escaped as $$, quotes and spaces: what Compose puts in the container's environment."""
    values = {"S": "a$b${NOT_A_VAR}", "Q": 'say "hi" #1', "P": "x\\y z", "PLAIN": "http://h:1/v1"}
    (tmp_path / "app.env").write_text(envfile.update("USER_KEY=kept\n", values, owned=values))
    (tmp_path / "compose.yml").write_text(
        "services:\n  app:\n    image: busybox\n    env_file: [./app.env]\n")
    out = subprocess.run(
        [compose_bin, "config", "--format", "json"], cwd=tmp_path, check=True,
        capture_output=True, text=True, env={"PATH": os.environ["PATH"]},
    ).stdout
    environment = json.loads(out)["services"]["app"]["environment"]
    # `config` prints a compose file, so a literal $ comes out escaped again as $$.
    expected = {key: value.replace("$", "$$") for key, value in values.items()}
    assert environment == {**expected, "USER_KEY": "kept"}
