"""Compose YAML read as Compose (go-yaml) reads it (yamlio), and written so YAML 1.1 and 1.2 agree (yamldump)."""

from __future__ import annotations

import datetime as dt
import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from compose_tunnel.errors import UserError
from compose_tunnel.yamldump import dump_compose_yaml
from compose_tunnel.yamlio import load_compose_file, load_compose_text
from compose_tunnel.yamltags import Override, Reset

# What the real docker-compose v2.40.3 binary gives each plain scalar (checked with
# `config --format json` on an x- field).
RESOLUTION = [
    ("0755", 493),
    ("08", 8.0),
    ("0o17", 15),
    ("0O17", 15),
    ("1_000", 1000),
    ("_1", "_1"),
    ("1_", 1),
    ("0x1F", 31),
    ("-0x1f", -31),
    ("0b101", 5),
    ("-0b101", -5),
    ("1e3", 1000.0),
    ("1.", 1.0),
    (".5", 0.5),
    ("+12", 12),
    ("1e", "1e"),
    ("0x", "0x"),
    ("0b", "0b"),
    ("-0", 0),
    ("1_0.5", 10.5),
    ("09.5", 9.5),
    ("18446744073709551615", 18446744073709551615),
    ("18446744073709551616", 1.8446744073709552e19),
    ("-9223372036854775808", -9223372036854775808),
    ("1e400", "1e400"),
    ("1e-400", 0.0),
    ("~", None),
    ("Null", None),
    ("NULL", None),
    ("null", None),
    ("Yes", "Yes"),
    ("yes", "yes"),
    ("on", "on"),
    ("off", "off"),
    ("TRUE", True),
    ("tRue", "tRue"),
    ("2222:22", "2222:22"),
    ("1:20", "1:20"),
    (".", "."),
    ("2001-12-14", dt.date(2001, 12, 14)),
    ("2001-12-14 21:59:43.10 -5", "2001-12-14 21:59:43.10 -5"),
    ("2001-13-45", "2001-13-45"),
]


@pytest.mark.parametrize(("text", "expected"), RESOLUTION, ids=[t for t, _ in RESOLUTION])
def test_plain_scalars_resolve_like_compose(text: str, expected: object) -> None:
    value = load_compose_text(f"x: {text}\n")["x"]
    assert value == expected
    assert type(value) is type(expected)


def test_special_floats_and_timestamps() -> None:
    doc = load_compose_text("a: .inf\nb: -.Inf\nc: .NaN\nd: 2001-12-14T21:59:43.10-05:00\n")
    assert doc["a"] == math.inf and doc["b"] == -math.inf and math.isnan(doc["c"])
    assert doc["d"] == dt.datetime(2001, 12, 14, 21, 59, 43, 100000, dt.timezone(-dt.timedelta(hours=5)))


def test_yaml11_traps_stay_strings() -> None:
    doc = load_compose_text("on: yes\nservices:\n  ssh:\n    ports:\n      - 2222:22\n")
    assert doc == {"on": "yes", "services": {"ssh": {"ports": ["2222:22"]}}}


def test_quoted_scalars_are_strings() -> None:
    assert load_compose_text("a: '0755'\nb: \"true\"\nc: !!str 12\n") == {"a": "0755", "b": "true", "c": "12"}


def test_duplicate_key_names_the_line() -> None:
    with pytest.raises(UserError) as err:
        load_compose_text("services:\n  web:\n    image: a\n    image: b\n", "overlay.yml")
    assert err.value.message == "overlay.yml: line 4: duplicate key 'image' (already defined at line 3)"
    assert err.value.hint == "keep one of them: a key appears once in a mapping"


def test_duplicate_key_compares_the_text_like_compose() -> None:
    with pytest.raises(UserError, match="line 1: duplicate key 'on'"):
        load_compose_text('x: {on: 1, "on": 2}\n')


def test_non_string_key_is_rejected() -> None:
    with pytest.raises(UserError, match=r"f.yml: line 3: non-string key in services.web.environment: 1"):
        load_compose_text("services:\n  web:\n    environment: {1: x}\n", "f.yml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n", "f.yml: the top level must be a mapping, not list"),
        ("a: [\n", "f.yml: line 2:"),
        ("a: 1\n---\nb: 2\n", "more than one YAML document"),
    ],
)
def test_bad_documents(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        load_compose_text(text, "f.yml")


def test_empty_document_is_an_empty_overlay() -> None:
    assert load_compose_text("# nothing yet\n") == {}


def test_unreadable_file(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(UserError, match="cannot read"):
        load_compose_file(tmp_path / "missing.yml")


def test_reset_and_override_tags() -> None:
    doc = load_compose_text(
        "services:\n  web:\n    ports: !reset []\n    command: !reset\n"
        "    environment: !override {A: 1}\n    image: !override '8080'\n"
    )
    web = doc["services"]["web"]
    assert web == {
        "ports": Reset([]),
        "command": Reset(None),
        "environment": Override({"A": 1}),
        "image": Override("8080"),
    }


def test_merge_keys_explicit_then_earlier_source_wins() -> None:
    doc = load_compose_text(
        "a: &a {restart: always, x: 1}\nb: &b {restart: 'no', y: 2}\n"
        "web:\n  <<: [*a, *b]\n  x: 3\n"
    )
    assert doc["web"] == {"restart": "always", "y": 2, "x": 3}


def test_reset_behind_an_anchor_does_not_travel_with_merge_key() -> None:
    """Compose strips `!reset` from the anchored mapping when it first meets it."""
    doc = load_compose_text(
        "x-a: &a\n  ports: !reset []\n  env: !override {A: 1}\nweb:\n  <<: *a\n  image: x\n"
    )
    assert doc["x-a"] == {"ports": Reset([]), "env": Override({"A": 1})}
    assert doc["web"] == {"env": Override({"A": 1}), "image": "x"}


# --- dumping -------------------------------------------------------------------

TRICKY_STRINGS = [
    "yes", "no", "on", "off", "Yes", "y", "n", "true", "null", "~", "", "2222:22", "1:20",
    "1e3", "0755", "0o17", "0x1F", "1_000", ".5", "1.", "+1", "-0", ".inf", ".NaN",
    "2001-12-14", "2001-12-14 21:59:43", "=", "<<", "-", "#x", "a: b", "- a", "@x", "%x",
    "'q'", '"q"', " lead", "trail ", "${VAR:-x}", "$$HOME", "8080:80",
]  # fmt: skip


@pytest.mark.parametrize("text", TRICKY_STRINGS)
def test_dumped_strings_read_back_as_strings_in_yaml11_and_12(text: str) -> None:
    out = dump_compose_yaml({"value": text, text: "key"})
    assert yaml.safe_load(out) == {"value": text, text: "key"}
    assert load_compose_text(out) == {"value": text, text: "key"}


def test_dollar_passes_through_untouched() -> None:
    out = dump_compose_yaml({"image": "nginx:${TAG:-1.25}", "command": "echo $$HOME"})
    assert out == "image: nginx:${TAG:-1.25}\ncommand: echo $$HOME\n"


def test_dump_is_block_style_in_input_order_and_deterministic() -> None:
    doc = {"services": {"web": {"image": "x", "ports": ["8080:80"], "environment": {"B": "1", "A": "2"}}}}
    out = dump_compose_yaml(doc)
    assert out == (
        "services:\n  web:\n    image: x\n    ports:\n    - 8080:80\n"
        "    environment:\n      B: '1'\n      A: '2'\n"
    )
    assert dump_compose_yaml(load_compose_text(out)) == out


def test_multiline_strings_use_literal_blocks() -> None:
    out = dump_compose_yaml({"command": "set -e\necho hi\n"})
    assert out == "command: |\n  set -e\n  echo hi\n"


def test_typed_values_round_trip() -> None:
    doc = {
        "i": 493, "f": 1000.0, "big": 1e21, "b": False, "n": None, "d": dt.date(2024, 1, 2),
        "t": dt.datetime(2001, 12, 14, 21, 59, 43, 100000, dt.timezone.utc), "inf": math.inf,
        "reset": Reset(None), "empty": Reset([]), "o": Override({"A": "1"}), "os": Override("on"),
    }  # fmt: skip
    out = dump_compose_yaml(doc)
    assert load_compose_text(out) == doc
    assert "reset: !reset null\n" in out and "os: !override 'on'\n" in out


def test_shared_objects_are_written_out_without_anchors() -> None:
    shared = {"A": "1"}
    assert "&" not in dump_compose_yaml({"a": shared, "b": shared})


scalars = (
    st.text()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.booleans()
    | st.none()
)
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), documents, max_size=5))
def test_round_trip(doc: dict) -> None:
    assert load_compose_text(dump_compose_yaml(doc)) == doc


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_string_reads_back_as_that_string_in_yaml11(text: str) -> None:
    assert yaml.safe_load(dump_compose_yaml({text: text})) == {text: text}


@pytest.mark.parametrize("text", [
    "services:\n  web:\n    image: a\n    image: b\n",  # duplicate key
    "services:\n  ? [a]\n  : 1\n",  # non-string key
    "services:\n\tweb: {}\n",  # a tab
    "- a\n- b\n",  # not a mapping
    "a: 1\n---\nb: 2\n",  # two documents
])
def test_every_error_in_a_compose_file_carries_a_hint(text) -> None:
    with pytest.raises(UserError) as err:
        load_compose_text(text, "overlay.yml")
    assert err.value.message.startswith("overlay.yml: ") and err.value.hint


@pytest.mark.parametrize("text", [
    "services: [web]\n", "services:\n  web: nginx\n", "services:\n  web:\n    ports: ['80:x']\n",
])
def test_every_error_merging_a_document_carries_a_hint(tmp_path, text) -> None:
    from compose_tunnel.merge import merge_files

    path = tmp_path / "overlay.yml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        merge_files([path])
    assert err.value.hint
