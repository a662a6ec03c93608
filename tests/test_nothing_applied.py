"""The commands that act on what `up` applied (doctor, backup, upgrade) say the same, in one
line with a hint and exit code 2, when nothing was, and each its own words for a swarm."""

from __future__ import annotations

import pytest

from test_upgrade_refusals import TUNNEL, applied, one_line_error, run


@pytest.mark.parametrize(("command", "ending"), [
    (["doctor"], ""), (["backup"], ": nothing to back up"), (["upgrade"], ""),
])
def test_nothing_started_is_refused_alike(tmp_path, command, ending):
    line = one_line_error(run(*command, cwd=tmp_path))
    workdir = tmp_path / ".compose-tunnel"
    assert f"nothing has been started from {workdir.relative_to(tmp_path)}{ending} (hint: run " \
           "`compose-tunnel up` first, or pass the --workdir you used)" in line


@pytest.mark.parametrize(("command", "words"), [
    (["doctor"], "doctor checks a stack on docker compose; this one runs on a swarm"),
    (["backup"], "backup works on a docker compose project; this one runs on the swarm"),
    (["upgrade"], "`compose-tunnel upgrade` replaces containers on this machine's engine; "
                  "reflector runs on a swarm"),
])
def test_a_stack_on_a_swarm_is_refused_in_each_commands_words(tmp_path, command, words):
    assert run("generate", *TUNNEL, cwd=tmp_path).returncode == 0
    applied(tmp_path, "reflector", ["base", "cpu", "caddy", "tunnel"], "swarm")
    assert words in one_line_error(run(*command, cwd=tmp_path))
