"""Cross-file `extends` and `include` resolved into a flat file that stands alone.

The corpus (test_merge_corpus.py) proves the merge against Compose for files in one directory;
here: overlays in other directories, a user profile directory end to end (generate, then
`docker compose config` inside the workdir), and the pieces (paths, variables) on their own.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from compose_tunnel.errors import UserError
from compose_tunnel.merge import merge_files
from compose_tunnel.rebase import absolute, rebase_service
from compose_tunnel.variables import bind_text
from compose_tunnel.yamldump import dump_compose_yaml

from test_generate import generate, run

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}


def compose_config(binary: Path, cwd: Path, *args: str) -> dict:
    done = subprocess.run([str(binary), *args, "config", "--format", "json"], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_overlay_elsewhere_resolves_from_the_project_directory(compose_bin, tmp_path):
    """Compose reads `extends.file`/`include` of every -f file from the project directory."""
    base = write(tmp_path / "project/compose.yml", "services:\n  web: {image: nginx}\n")
    write(tmp_path / "project/lib/common.yml",
          "services:\n  worker:\n    image: python:3.12\n    volumes: [./code:/code]\n")
    write(tmp_path / "project/lib/db.yml", "services:\n  db:\n    image: postgres\n"
          "    volumes: [./pg:/var/lib/postgresql/data]\n")
    overlay = write(tmp_path / "elsewhere/overlay.yml",
                    "include: [lib/db.yml]\nservices:\n  worker:\n"
                    "    extends: {file: lib/common.yml, service: worker}\n")
    merged = write(tmp_path / "project/merged.yml", dump_compose_yaml(merge_files([base, overlay])))
    project = tmp_path / "project"
    original = compose_config(compose_bin, project, "-p", "t", "-f", str(base), "-f", str(overlay))
    assert compose_config(compose_bin, project, "-p", "t", "-f", str(merged)) == original
    assert "include" not in merged.read_text() and "extends" not in merged.read_text()
    assert original["services"]["worker"]["volumes"][0]["source"] == str(project / "lib/code")


@pytest.fixture
def user_profiles(tmp_path: Path) -> Path:
    """A profile directory that shares fragments: the issue's example, grown."""
    directory = tmp_path / "profiles-dir"
    write(directory / "common.yml", "services:\n  base-svc:\n    image: alpine:3\n"
          "    environment: {FROM_COMMON: \"1\"}\n    volumes: [./shared-data:/data]\n"
          "    build: {context: ./app}\n")
    write(directory / "extra.yml", "services:\n  extra:\n"
          "    extends: {file: common.yml, service: base-svc}\n")
    write(directory / "_db.yml", "services:\n  metrics-db:\n    image: postgres:15\n"
          "    env_file: [metrics.env]\n    volumes: [./metrics:/var/lib/postgresql/data]\n")
    write(directory / "metrics.env", "METRICS=1\n")
    write(directory / "metrics.yml", "include: [_db.yml]\nservices:\n  metrics:\n"
          "    image: grafana/grafana\n    depends_on: [metrics-db]\n")
    write(directory / "metrics-tuning.yml", "services:\n  metrics-db:\n"
          "    command: [postgres, -c, shared_buffers=256MB]\n")
    write(directory / "profiles.toml", "[metrics-tuning]\nrequires = [\"metrics\"]\n")
    return directory


def test_profile_directory_example_stands_alone(compose_bin, docker_config, user_profiles, tmp_path):
    """generate, then `docker compose config` in the workdir: each user service is what Compose
    makes of the profile file read from its own directory, and the rest is unchanged."""
    project = tmp_path / "p"
    project.mkdir()
    args = ["--cpu", "--profiles-dir", str(user_profiles)]
    generate(project, *args, "--workdir", "w")  # the same workdir: the same secrets
    plain = compose_config(compose_bin, project / "w")
    generate(project, *args, "--profile", "extra", "--profile", "metrics",
             "--profile", "metrics-tuning", "--workdir", "w")
    custom = compose_config(compose_bin, project / "w")
    text = (project / "w/compose.yml").read_text()
    assert "extends" not in text and "include" not in text

    alone = compose_config(compose_bin, user_profiles, "-p", "w",
                           "-f", "extra.yml", "-f", "metrics.yml", "-f", "metrics-tuning.yml")
    added = {"extra", "metrics", "metrics-db"}
    assert set(custom["services"]) == set(plain["services"]) | added
    for name in added:
        assert custom["services"][name] == alone["services"][name], name
    for name in plain["services"]:
        assert custom["services"][name] == plain["services"][name], name
    extra = custom["services"]["extra"]
    assert extra["build"]["context"] == str(user_profiles / "app")
    assert extra["volumes"][0]["source"] == str(user_profiles / "shared-data")
    assert custom["services"]["metrics-db"]["environment"]["METRICS"] == "1"
    assert custom["services"]["metrics-db"]["command"][-1] == "shared_buffers=256MB"


def test_fragments_are_not_profiles(user_profiles, tmp_path):
    out = run("profiles", "--profiles-dir", str(user_profiles), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "_db" not in out.stdout and "metrics" in out.stdout
    refused = run("generate", "--profiles-dir", str(user_profiles), "--profile", "_db", cwd=tmp_path)
    assert refused.returncode == 2 and "unknown profile '_db'" in refused.stderr


@pytest.mark.parametrize(("files", "message"), [
    ({"1.yml": "include: [a.yml]\n", "a.yml": "include: [b.yml]\n", "b.yml": "include: [a.yml]\n"},
     "include cycle detected"),
    ({"1.yml": "include: [\"${DIR}/a.yml\"]\n"}, "holds a variable"),
    ({"1.yml": "include: [{env_file: x.env}]\n"}, "x.env: no such file"),
    ({"1.yml": "include: [{path: a.yml, env_file: nope.env}]\n", "a.yml": "services: {}\n"},
     "include env_file"),
    ({"1.yml": "services:\n  a:\n    extends: {file: b.yml, service: b}\n",
      "b.yml": "services:\n  b:\n    extends: {file: 1.yml, service: a}\n"}, "Circular reference"),
    ({"1.yml": "services:\n  a:\n    extends: {file: b.yml, service: b}\n", "b.yml": "x-only: 1\n"},
     "extends 'b.yml', which has no services"),
    ({"1.yml": "services:\n  a:\n    extends: {file: b.yml, service: c}\n", "b.yml": "services: {b: {}}\n"},
     'service "c" not found in b.yml'),
])
def test_reference_errors_are_one_line(tmp_path, files, message):
    for name, text in files.items():
        write(tmp_path / name, text)
    with pytest.raises(UserError) as caught:
        merge_files([tmp_path / "1.yml"])
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_cycle_names_each_file(tmp_path):
    write(tmp_path / "1.yml", "services:\n  a:\n    extends: {file: lib/b.yml, service: b}\n")
    write(tmp_path / "lib/b.yml", "services:\n  b:\n    extends: c\n  c:\n    extends: b\n")
    with pytest.raises(UserError, match=r"a \(1.yml\) -> b \(b.yml\) -> c \(b.yml\) -> b \(b.yml\)"):
        merge_files([tmp_path / "1.yml"])


def test_inputs_are_read_not_written(tmp_path):
    files = {"1.yml": "include: [inc/a.yml]\nservices:\n  w:\n    extends: {file: inc/b.yml, service: b}\n",
             "inc/a.yml": "services:\n  a: {image: x, volumes: [./d:/d]}\n",
             "inc/b.yml": "services:\n  b: {image: y, build: .}\n"}
    for name, text in files.items():
        write(tmp_path / name, text)
    before = {name: (tmp_path / name).read_bytes() for name in files}
    merged = merge_files([tmp_path / "1.yml"])
    assert merged["services"]["a"]["volumes"] == [f"{tmp_path}/inc/d:/d"]
    assert merged["services"]["w"]["build"] == str(tmp_path / "inc")
    assert {name: (tmp_path / name).read_bytes() for name in files} == before


@pytest.mark.parametrize(("value", "expected"), [
    ("./data", "/base/data"), ("data", "/base/data"), ("../up", "/up"), (".", "/base"),
    ("/abs", "/abs"), ("~/home", "~/home"), ("${DIR}/x", "${DIR}/x"), ("C:\\x", "C:\\x"),
    ("", ""), (5, 5),
])
def test_absolute(value, expected):
    assert absolute(value, Path("/base")) == expected


def test_rebase_service_fields():
    service = {
        "build": {"context": "git@github.com:x/y.git", "additional_contexts": ["a=./a", "b=docker-image://x"],
                  "ssh": ["default", "key=./id"]},
        "env_file": ["a.env", {"path": "b.env", "required": False}],
        "label_file": "l.txt",
        "volumes": ["./v:/v:ro", "named:/n", "/h:/h", {"type": "bind", "source": "s", "target": "/s"},
                    {"type": "volume", "source": "vol", "target": "/vol"}],
        "develop": {"watch": [{"action": "sync", "path": "src", "target": "/src"}]},
    }
    rebase_service(service, Path("/b"))
    assert service == {
        "build": {"context": "git@github.com:x/y.git", "additional_contexts": ["a=/b/a", "b=docker-image://x"],
                  "ssh": ["default", "key=/b/id"]},
        "env_file": ["/b/a.env", {"path": "/b/b.env", "required": False}],
        "label_file": "/b/l.txt",
        "volumes": ["/b/v:/v:ro", "named:/n", "/h:/h", {"type": "bind", "source": "/b/s", "target": "/s"},
                    {"type": "volume", "source": "vol", "target": "/vol"}],
        "develop": {"watch": [{"action": "sync", "path": "/b/src", "target": "/src"}]},
    }


ENV_FILE = {"TAG": "15", "EMPTY": "", "PRICE": "$5", "BRACE": "a}b"}


@pytest.mark.parametrize(("text", "expected"), [
    ("${TAG}", "${TAG-15}"), ("$TAG", "${TAG-15}"), ("x${TAG}y", "x${TAG-15}y"),
    ("${TAG-d}", "${TAG-15}"), ("${TAG?e}", "${TAG-15}"), ("${TAG:-d}", "${TAG:-15}"),
    ("${TAG:?e}", "${TAG:-15}"), ("${TAG+alt}", "alt"), ("${TAG:+alt}", "alt"),
    ("${EMPTY:-d}", "${EMPTY:-d}"), ("${EMPTY:+alt}", "${EMPTY:+alt}"), ("${EMPTY}", "${EMPTY-}"),
    ("${PRICE}", "${PRICE-$$5}"), ("$$TAG", "$$TAG"), ("${OTHER:-${TAG}}", "${OTHER:-${TAG-15}}"),
    ("${BRACE}", "${BRACE}"), ("${OTHER}", "${OTHER}"), ("$", "$"), ("${TAG", "${TAG"),
    ("${TAG:-${OTHER:-x}}", "${TAG:-15}"),
])
def test_bind_text(text, expected):
    assert bind_text(text, ENV_FILE) == expected


def test_deep_and_wide_references_are_refused_quickly(tmp_path):
    """Hostile inputs: an extends chain across 100 files, an include fan-out of 40 x 40 x 40."""
    for index in range(100):
        write(tmp_path / f"deep/{index}.yml",
              f"services:\n  s:\n    extends: {{file: {index + 1}.yml, service: s}}\n")
    with pytest.raises(UserError, match="extends chain deeper than 64"):
        merge_files([tmp_path / "deep/0.yml"])
    wide = ", ".join(["b.yml"] * 40)
    write(tmp_path / "wide/1.yml", f"include: [{', '.join(['a.yml'] * 40)}]\n")
    write(tmp_path / "wide/a.yml", f"include: [{wide}]\n")
    write(tmp_path / "wide/b.yml", "services:\n  b: {image: x}\n")
    with pytest.raises(UserError, match="more than 1000 compose files read"):
        merge_files([tmp_path / "wide/1.yml"])
