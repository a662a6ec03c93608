"""Compose's model of a project, piece by piece (the corpus proves the whole against Compose):
the schema as Compose 2.40 reads it, interpolation of literal values, de-duplication, the long
syntax of short volumes, durations, and where an error is placed."""

from __future__ import annotations

import pytest

from compose_tunnel.canonical import parse_volume
from compose_tunnel.interpolation import interpolate
from compose_tunnel.model import ModelError, unknown
from compose_tunnel.unicity import unique
from compose_tunnel.consistency import duration_problem, size
from compose_tunnel.errors import UserError
from compose_tunnel.merge import merge_files
from compose_tunnel.schema import compose_schema, first_error


def test_the_schema_is_compose_2_40s():
    full = compose_schema()
    service = full["$defs"]["service"]
    assert "jobs" not in full["properties"]
    assert service["additionalProperties"] is False and "umask" not in service["properties"]
    assert "pre_start" not in service["properties"] and "image" in service["properties"]
    assert service["properties"]["mem_limit"]["type"] == ["number", "string"]
    assert first_error({"services": {"web": {"image": "x", "pull_policy": "missing_always"}}}) is None
    error = first_error({"services": {"web": {"image": "x", "umask": "022"}}})
    assert error.message == "services.web additional properties 'umask' not allowed"


def test_compose_picks_the_most_specific_error_and_words_it():
    error = first_error({"services": {"web": {"image": "x", "depends_on": {"db": {"restart": True}}}}})
    assert error.message == "services.web.depends_on.db missing property 'condition'"
    error = first_error({"services": {"web": {"image": "x", "ports": "80:80"}}})
    assert error.message == "services.web.ports must be a array"
    error = first_error({"services": {"web": {"image": "x", "security_opt": ["a", "a"]}}})
    assert error.message == "services.web.security_opt items at 0 and 1 are equal"


@pytest.mark.parametrize(("text", "known"), [("${A}", False), ("$A", False), ("$$A", True), ("a$", True),
                                              ("$1", True), ("x", True)])
def test_a_value_is_unknown_while_it_holds_a_variable(text, known):
    assert unknown(text) is not known


def test_literal_values_are_interpolated_and_cast_as_compose_does():
    doc = {"services": {"web": {"scale": "2", "privileged": "yes", "command": "echo $$HOME",
                                "ports": [{"target": "80"}], "labels": {"a": "3"}, "cpus": "${N}"}}}
    web = interpolate(doc)["services"]["web"]
    assert web == {"scale": 2, "privileged": True, "command": "echo $HOME", "ports": [{"target": 80}],
                   "labels": {"a": "3"}, "cpus": "${N}"}
    with pytest.raises(ModelError, match="invalid boolean: maybe"):
        interpolate({"services": {"web": {"tty": "maybe"}}})
    with pytest.raises(ModelError, match=r"invalid interpolation format for services\.web\.image"):
        interpolate({"services": {"web": {"image": "nginx:${TAG"}}})


def test_unicity_keeps_the_later_entry_in_the_first_place():
    model = {"services": {"web": {"environment": ["A=1", "B=2", "A=3"], "ports": ["80:80", "80:80"],
                                  "security_opt": ["a", "a"]}}}
    web = unique(model)["services"]["web"]
    assert web == {"environment": ["A=3", "B=2"], "ports": ["80:80"], "security_opt": ["a", "a"]}
    with pytest.raises(ModelError, match=r"services\.web\.expose\.\[0\]: unsupported expose value"):
        unique({"services": {"web": {"expose": [80.5]}}})


@pytest.mark.parametrize(("spec", "volume"), [
    ("/data", {"type": "volume", "target": "/data", "volume": {}}),
    ("data:/data:ro", {"type": "volume", "source": "data", "target": "/data", "read_only": True, "volume": {}}),
    ("./src:/src:z", {"type": "bind", "source": "./src", "target": "/src",
                      "bind": {"selinux": "z", "create_host_path": True}}),
    ("${DIR}:/d", {"type": "volume", "source": "${DIR}", "target": "/d", "volume": {}}),
])
def test_short_volumes_read_as_compose_reads_them(spec, volume):
    assert parse_volume(spec, ()) == volume


def test_a_volume_with_an_empty_section_is_refused():
    with pytest.raises(ModelError, match="invalid spec: /a::/b: empty section between colons"):
        parse_volume("/a::/b", ())


@pytest.mark.parametrize(("text", "problem"), [("1m30s", None), ("2d", None), ("1w", None), ("0", None),
                                               ("10x", 'time: unknown unit "x" in duration "10x"'),
                                               ("10", 'time: missing unit in duration "10"'),
                                               ("", 'time: invalid duration ""')])
def test_durations_read_as_compose_reads_them(text, problem):
    assert duration_problem(text) == problem


def test_sizes_read_as_go_units_reads_them():
    assert size("1g") == 1 << 30 and size("512m") == 512 << 20 and size(2048) == 2048
    assert size("lots") is None and size(1.5) is None


def write(directory, name, text):
    path = directory / name
    path.write_text(text)
    return path


def test_a_duplicate_the_merge_made_names_both_files(tmp_path):
    base = write(tmp_path, "base.yml", "services:\n  web:\n    image: nginx\n    security_opt: [label:disable]\n")
    mine = write(tmp_path, "mine.yml", "services:\n  web:\n    security_opt:\n      - label:disable\n")
    with pytest.raises(UserError) as error:
        merge_files([base, mine])
    assert error.value.message == (f"{mine}:4:9: services.web.security_opt items at 0 and 1 are equal "
                                   f"(also set in {base}:4:20)")


def test_an_overlay_is_validated_with_what_it_overlays(tmp_path):
    base = write(tmp_path, "base.yml", "services:\n  web:\n    image: nginx\n    depends_on:\n"
                                       "      db: {condition: service_healthy}\n  db:\n    image: postgres\n")
    mine = write(tmp_path, "mine.yml", "services:\n  web:\n    depends_on:\n      db: {restart: true}\n")
    merged = merge_files([base, mine])
    assert merged["services"]["web"]["depends_on"] == {"db": {"condition": "service_healthy", "restart": True}}
    lone = write(tmp_path, "lone.yml", "services:\n  web:\n    image: nginx\n    depends_on:\n"
                                       "      db: {restart: true}\n  db:\n    image: postgres\n")
    with pytest.raises(UserError, match=r"lone\.yml:5:7: services\.web\.depends_on\.db missing property"):
        merge_files([lone, mine])


def test_a_reference_made_by_extends_is_checked_once_extends_is_resolved(tmp_path):
    base = write(tmp_path, "base.yml", "services:\n  app:\n    image: nginx\n    volumes: [data:/data]\n"
                                       "  web:\n    extends: app\n")
    with pytest.raises(UserError, match='service "app" refers to undefined volume data'):
        merge_files([base])
    mine = write(tmp_path, "mine.yml", "volumes:\n  data: {}\n")
    assert merge_files([base, mine])["services"]["web"]["volumes"] == ["data:/data"]
