"""merge: the Compose v2 merge rules, one rule at a time (the corpus proves them against Compose)."""

from __future__ import annotations

import copy

import pytest

from compose_tunnel.errors import UserError
from compose_tunnel.merge import merge_documents, merge_files
from compose_tunnel.mergerules import go_string
from compose_tunnel.ports import parse_port
from compose_tunnel.yamlio import load_compose_text


def merge(*texts: str) -> dict:
    docs = [load_compose_text(t, f"{i + 1}.yml") for i, t in enumerate(texts)]
    return merge_documents(docs, [f"{i + 1}.yml" for i in range(len(texts))])


def web(*texts: str) -> dict:
    return merge(*texts)["services"]["web"]


def test_mappings_merge_recursively_and_scalars_are_replaced() -> None:
    result = web(
        "services:\n  web:\n    image: a\n    deploy: {replicas: 1, resources: {limits: {cpus: '1'}}}\n",
        "services:\n  web:\n    image: b\n    deploy: {resources: {limits: {memory: 1G}}}\n",
    )
    assert result == {
        "image": "b",
        "deploy": {"replicas": 1, "resources": {"limits": {"cpus": "1", "memory": "1G"}}},
    }


@pytest.mark.parametrize("field", ["command", "entrypoint"])
def test_command_like_fields_are_replaced(field: str) -> None:
    result = web(f"services:\n  web:\n    {field}: [a, b]\n", f"services:\n  web:\n    {field}: [c]\n")
    assert result[field] == ["c"]


def test_healthcheck_test_replaced_rest_merged() -> None:
    result = web(
        "services:\n  web:\n    healthcheck: {test: [CMD, a], interval: 5s}\n",
        "services:\n  web:\n    healthcheck: {test: b, retries: 3}\n",
    )
    assert result["healthcheck"] == {"test": "b", "interval": "5s", "retries": 3}


def test_null_keeps_the_earlier_value_except_for_replaced_fields() -> None:
    result = web(
        "services:\n  web:\n    image: a\n    command: [x]\n    ports: ['80:80']\n",
        "services:\n  web:\n    image:\n    command:\n    ports:\n",
    )
    assert result == {"image": "a", "command": None, "ports": ["80:80"]}


def test_sequences_append() -> None:
    result = web(
        "services:\n  web:\n    security_opt: [a]\n", "services:\n  web:\n    security_opt: [b]\n"
    )
    assert result["security_opt"] == ["a", "b"]


def test_key_value_fields_mix_list_and_map_like_compose() -> None:
    result = web(
        "services:\n  web:\n    environment: {B: 1.0, A: x, C: null, D: true}\n",
        "services:\n  web:\n    environment: [A=y, E=1]\n",
    )
    # Compose turns the map into sorted k=v entries (Go formatting), appends, de-duplicates.
    assert result["environment"] == ["A=y", "B=1", "C", "D=true", "E=1"]


def test_key_value_map_stays_a_map_when_only_one_file_sets_it() -> None:
    result = web("services:\n  web:\n    labels: {a: '1'}\n", "services:\n  web:\n    image: x\n")
    assert result["labels"] == {"a": "1"}


def test_ports_deduplicate_on_host_ip_port_protocol() -> None:
    result = web(
        "services:\n  web:\n    ports: ['8080:80', '127.0.0.1:9000:9000', '53:53/udp']\n",
        "services:\n  web:\n    ports: ['8080:80/tcp', '9000:9000', '53:53/udp']\n",
    )
    assert result["ports"] == ["8080:80/tcp", "127.0.0.1:9000:9000", "53:53/udp", "9000:9000"]


def test_volumes_unique_by_target_later_wins_in_place() -> None:
    result = web(
        "services:\n  web:\n    volumes: [./a:/data:ro, ./b:/b, logs:/logs]\n",
        "services:\n  web:\n    volumes: [{type: bind, source: ./c, target: /b}, ./d:/data]\n",
    )
    assert result["volumes"] == ["./d:/data", {"type": "bind", "source": "./c", "target": "/b"}, "logs:/logs"]


def test_secrets_unique_by_target() -> None:
    result = web(
        "services:\n  web:\n    secrets: [token, {source: key, target: /run/secrets/k}]\n",
        "services:\n  web:\n    secrets: [{source: token, mode: 0400}, key]\n",
    )
    assert result["secrets"] == [{"source": "token", "mode": 256}, {"source": "key", "target": "/run/secrets/k"}, "key"]


def test_entries_with_variables_are_left_for_compose_to_deduplicate() -> None:
    result = web(
        "services:\n  web:\n    ports: ['${P:-80}:80', '8080:80']\n",
        "services:\n  web:\n    ports: ['${P:-80}:80', '8080:80']\n",
    )
    assert result["ports"] == ["${P:-80}:80", "8080:80", "${P:-80}:80", "8080:80"]


def test_depends_on_short_form_merges_as_service_started() -> None:
    result = web(
        "services:\n  web:\n    depends_on: {db: {condition: service_healthy, restart: true}}\n",
        "services:\n  web:\n    depends_on: [db, cache]\n",
    )
    assert result["depends_on"] == {
        "db": {"condition": "service_started", "restart": True, "required": True},
        "cache": {"condition": "service_started", "required": True},
    }


def test_service_networks_list_and_map() -> None:
    result = web(
        "services:\n  web:\n    networks: [front, back]\n",
        "services:\n  web:\n    networks: {front: {aliases: [www]}}\n",
    )
    assert result["networks"] == {"front": {"aliases": ["www"]}, "back": None}


def test_logging_driver_change_drops_options() -> None:
    base = "services:\n  web:\n    logging: {driver: json-file, options: {max-size: 1m}}\n"
    same = web(base, "services:\n  web:\n    logging: {driver: json-file, options: {max-file: '2'}}\n")
    other = web(base, "services:\n  web:\n    logging: {driver: syslog}\n")
    assert same["logging"] == {"driver": "json-file", "options": {"max-size": "1m", "max-file": "2"}}
    assert other["logging"] == {"driver": "syslog"}


def test_build_string_and_mapping() -> None:
    result = web("services:\n  web:\n    build: ./app\n", "services:\n  web:\n    build: {args: [A=1]}\n")
    assert result["build"] == {"context": "./app", "args": ["A=1"]}


def test_each_ulimit_is_replaced_whole() -> None:
    result = web(
        "services:\n  web:\n    ulimits: {nofile: {soft: 1, hard: 2}, nproc: 10}\n",
        "services:\n  web:\n    ulimits: {nofile: {soft: 3, hard: 5}}\n",
    )
    assert result["ulimits"] == {"nofile": {"soft": 3, "hard": 5}, "nproc": 10}


def test_extra_hosts_skip_entries_already_there() -> None:
    result = web(
        "services:\n  web:\n    extra_hosts: ['a=1.1.1.1']\n",
        "services:\n  web:\n    extra_hosts: {a: 1.1.1.1, b: [2.2.2.2, 3.3.3.3]}\n",
    )
    assert result["extra_hosts"] == ["a=1.1.1.1", "b=2.2.2.2", "b=3.3.3.3"]


def test_x_extensions_merge_recursively() -> None:
    result = merge("x-a: {a: 1, l: [1]}\nservices: {}\n", "x-a: {b: 2, l: [2]}\n")
    assert result["x-a"] == {"a": 1, "l": [1, 2], "b": 2}


def test_reset_removes_and_override_replaces() -> None:
    result = web(
        "services:\n  web:\n    ports: ['80:80']\n    environment: {A: '1', B: '2'}\n    labels: {a: b}\n",
        "services:\n  web:\n    ports: !reset []\n    environment: {A: !reset null}\n    labels: !override {c: d}\n",
    )
    # the emptied `environment: {}` of 2.yml still merges: Compose makes it a k=v list
    assert result == {"environment": ["B=2"], "labels": {"c": "d"}}


def test_reset_of_a_key_after_compose_made_a_list_does_nothing() -> None:
    result = web(
        "services:\n  web:\n    environment: {A: '1'}\n",
        "services:\n  web:\n    environment: {B: '2'}\n",
        "services:\n  web:\n    environment: {A: !reset null}\n",
    )
    assert result["environment"] == ["A=1", "B=2"]


def test_reset_reaches_list_form_networks_as_compose_canonicalises_them() -> None:
    result = web("services:\n  web:\n    networks: [a, b]\n", "services:\n  web:\n    networks: {b: !reset null}\n")
    assert result["networks"] == {"a": None}


def test_reset_whole_service() -> None:
    assert merge("services:\n  web: {image: a}\n  db: {image: b}\n", "services:\n  web: !reset\n")["services"] == {
        "db": {"image": "b"}
    }


def test_inputs_are_not_modified() -> None:
    docs = [
        load_compose_text("services:\n  web:\n    environment: {A: '1'}\n    ports: ['80:80']\n"),
        load_compose_text("services:\n  web:\n    environment: [B=2]\n    ports: !override ['81:81']\n"),
    ]
    before = copy.deepcopy(docs)
    merge_documents(docs)
    assert docs == before


def test_variables_and_relative_paths_are_kept_as_written() -> None:
    result = web(
        "services:\n  web:\n    image: 'nginx:${TAG:-1}'\n    build: {context: ./app}\n",
        "services:\n  web:\n    env_file: ../env/.env\n    volumes: ['${DATA:-./data}:/data']\n",
    )
    assert result == {
        "image": "nginx:${TAG:-1}",
        "build": {"context": "./app"},
        "env_file": "../env/.env",
        "volumes": ["${DATA:-./data}:/data"],
    }


def test_version_is_dropped_name_is_replaced() -> None:
    assert merge("version: '3'\nname: a\nservices: {}\n", "name: b\n") == {"name": "b", "services": {}}


# --- errors ----------------------------------------------------------------------


def test_unknown_top_level_key() -> None:
    with pytest.raises(UserError) as err:
        merge("services: {}\n", "servics: {}\n")
    assert err.value.message == "2.yml: additional properties 'servics' not allowed (did you mean 'services'?)"


def test_invalid_port_names_file_path_and_index() -> None:
    with pytest.raises(UserError) as err:
        merge("services:\n  web: {image: a}\n", "services:\n  web:\n    ports: ['80:80', '80:abc']\n")
    assert err.value.message == '2.yml: services.web.ports[1]: invalid port "80:abc" (invalid containerPort: abc)'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services:\n  web: nginx\n", "2.yml: services.web must be a mapping"),
        ("services: [web]\n", "2.yml: services must be a mapping"),
        ("services:\n  api:\n", "2.yml: services.api must be a mapping"),
        ("services:\n  web:\n    deploy: [x]\n", "2.yml: cannot override services.web.deploy"),
    ],
)
def test_structural_errors(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        merge("services:\n  web:\n    image: a\n    deploy: {replicas: 1}\n", text)


PORTS = [
    ("80", ("", "", 80, 80, "tcp")),
    (80, ("", "", 80, 80, "tcp")),
    ("8080:80/udp", ("", "8080", 80, 80, "udp")),
    ("127.0.0.1::80", ("127.0.0.1", "", 80, 80, "tcp")),
    ("[::1]:53:53/udp", ("::1", "53", 53, 53, "udp")),
    ("8000-8001:90-91", ("", "8000-8001", 90, 91, "tcp")),
    ("8000-8010:80", ("", "8000-8010", 80, 80, "tcp")),
    ("0:80", ("", "0", 80, 80, "tcp")),
    ("80/", ("", "", 80, 80, "tcp")),
    ("${P}:80", None),
    ({"target": 80}, None),
]


@pytest.mark.parametrize(("spec", "parsed"), PORTS, ids=[str(s) for s, _ in PORTS])
def test_parse_port(spec: object, parsed: tuple | None) -> None:
    assert parse_port(spec) == parsed


BAD_PORTS = [
    ("80:80:80:80", "invalid IP address: 80:80"),
    ("abc", "invalid containerPort: abc"),
    ("80:0", "missing a target port"),
    ("70000:80", "invalid hostPort: 70000"),
    ("8000-70000:80", "invalid hostPort: 8000-70000"),
    ("8000-8002:80-81", "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"),
    ("80/xyz", "invalid proto: xyz"),
    ("80:", "invalid proto: "),
    ("80-79", "invalid containerPort: 80-79"),
    (70000, "invalid containerPort: 70000"),
    (80.5, "invalid type float"),
]


@pytest.mark.parametrize(("spec", "reason"), BAD_PORTS, ids=[str(s) for s, _ in BAD_PORTS])
def test_parse_port_rejects_like_compose(spec: object, reason: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_port(spec)
    assert str(err.value).startswith(reason)


@pytest.mark.parametrize(
    ("value", "text"),
    [(2.5, "2.5"), (1000.0, "1000"), (1e21, "1e+21"), (1.25e-05, "1.25e-05"), (0.0001, "0.0001"),
     (-0.0, "-0"), (True, "true"), (None, "<nil>"), (42, "42"), (float("inf"), "+Inf")],
)  # fmt: skip
def test_go_string_formats_like_go(value: object, text: str) -> None:
    assert go_string(value) == text


def test_merge_files_reads_and_names_files(tmp_path) -> None:  # noqa: ANN001
    base = tmp_path / "base.yml"
    overlay = tmp_path / "overlay.yml"
    base.write_text("services:\n  web:\n    image: a\n")
    overlay.write_text("services:\n  web:\n    ports: ['1:1:1:1']\n")
    with pytest.raises(UserError, match=r"overlay\.yml:3:13: services\.web\.ports\[0\]: invalid port"):
        merge_files([base, overlay])
    overlay.write_text("services:\n  web:\n    image: b\n")
    assert merge_files([base, overlay]) == {"services": {"web": {"image": "b"}}}
