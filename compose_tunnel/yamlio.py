"""YAML for compose files, read the way Docker Compose reads them.

Compose (Go, go-yaml v3/v4) does not read YAML like PyYAML does. PyYAML's default
resolver is YAML 1.1: `2222:22` is the integer 133342, `on`/`yes` are booleans and
duplicate keys pass silently. Go's resolver is YAML 1.2-ish with its own quirks
(`0755` is still octal, `_` is dropped from numbers, `1e3` is a float), and Compose
rejects duplicate and non-string keys. This module loads a compose file into the
values Compose would see; `yamldump` writes a document back so that both a YAML 1.1
and a YAML 1.2 (Go) reader get exactly those values, by this module's resolution.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import math
import os
import re
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from .errors import UserError
from .yamlguard import HOSTILE_HINT, MAX_TEXT_BYTES, AliasCycle, check_expansion, check_keys, walk_as_compose
from .yamltags import MERGE_TAG, OVERRIDE_TAG, RESET_TAG, STR_TAG, TIMESTAMP_TAG, Override, Reset

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"

# --- Go's scalar resolution ---------------------------------------------------

_NULLS = {"", "~", "null", "Null", "NULL"}
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_SPECIAL_FLOATS = {
    **{s: math.inf for s in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{s: -math.inf for s in ("-.inf", "-.Inf", "-.INF")},
    **{s: math.nan for s in (".nan", ".NaN", ".NAN")},
}
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_GO_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_DATE = r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
_CLOCK = r"([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:\.([0-9]+))?"
_TS_DATE = re.compile(_DATE)
_TS_ZONED = re.compile(_DATE + "[Tt]" + _CLOCK + r"(Z|[-+][0-9]{2}:[0-9]{2})")
_TS_NAIVE = re.compile(_DATE + " " + _CLOCK)
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1


def _go_int(text: str) -> int | None:
    """strconv.ParseInt(s, 0, 64), then ParseUint: Go prefixes, and `0755` is octal."""
    match = _GO_INT.fullmatch(text)
    if not match:
        return None
    sign, digits = match.groups()
    if digits[:2].lower() in ("0x", "0o", "0b"):
        value = int(digits[2:], {"x": 16, "o": 8, "b": 2}[digits[1].lower()])
    elif len(digits) > 1 and digits[0] == "0":
        value = int(digits[1:], 8)
    else:
        value = int(digits)
    value = -value if sign == "-" else value
    if _INT64[0] <= value <= _INT64[1] or (not sign and value <= _UINT64_MAX):
        return value
    return None


def _go_timestamp(text: str) -> dt.date | dt.datetime | None:
    """go-yaml's four timestamp layouts (RFC 3339 with `T`/`t`, space without zone, date)."""
    try:
        if match := _TS_DATE.fullmatch(text):
            return dt.date(*map(int, match.groups()))
        zoned = _TS_ZONED.fullmatch(text)
        match = zoned or _TS_NAIVE.fullmatch(text)
        if not match:
            return None
        y, mo, d, h, mi, s, frac = match.groups()[:7]
        micro = int((frac or "0")[:6].ljust(6, "0"))
        tz = None
        if zoned:
            zone = match.group(8)
            if zone == "Z":
                tz = dt.timezone.utc
            else:
                sign = -1 if zone[0] == "-" else 1
                tz = dt.timezone(sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        return dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tzinfo=tz)
    except ValueError:
        return None


def resolve_plain(text: str) -> Any:
    """The value go-yaml gives an untagged plain scalar (see go-yaml's resolve.go)."""
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    first = text[0]
    if first == "." and _GO_DOT_FLOAT.fullmatch(text):
        return float(text)
    if not (first.isdigit() and first.isascii()) and first not in "+-":
        return text
    if (stamp := _go_timestamp(text)) is not None:
        return stamp
    plain = text.replace("_", "")
    if (number := _go_int(plain)) is not None:
        return number
    if _GO_FLOAT.fullmatch(plain):
        value = float(plain)
        if not math.isinf(value):  # Go's ParseFloat fails on overflow: the text stays a string
            return value
    return text


def plain_tag(text: str) -> str:
    if text == "<<":
        return MERGE_TAG
    value = resolve_plain(text)
    if isinstance(value, bool):
        return _BOOL
    return {
        type(None): _NULL,
        int: _INT,
        float: _FLOAT,
        dt.date: TIMESTAMP_TAG,
        dt.datetime: TIMESTAMP_TAG,
        str: STR_TAG,
    }[type(value)]


# --- loading ------------------------------------------------------------------


class _GoResolver(BaseResolver):
    """Tags plain scalars as go-yaml would; quoted scalars are always strings."""

    def resolve(self, kind, value, implicit):  # noqa: ANN001, ANN201 - PyYAML's signature
        if kind is ScalarNode:
            return plain_tag(value) if implicit[0] else STR_TAG
        return super().resolve(kind, value, implicit)


class _GoConstructor(SafeConstructor):
    """Builds the Go values for the tags `_GoResolver` picks, plus !reset / !override."""

    def construct_yaml_null(self, node):  # noqa: ANN001, ANN201
        return None

    def construct_yaml_int(self, node):  # noqa: ANN001, ANN201
        """Ints, floats, bools and timestamps all follow go-yaml's resolution of the text."""
        return resolve_plain(node.value)

    construct_yaml_float = construct_yaml_int
    construct_yaml_timestamp = construct_yaml_int
    construct_yaml_bool = construct_yaml_int

    def flatten_mapping(self, node: MappingNode) -> None:
        """Resolve `<<` merge keys as go-yaml does: explicit keys win, then earlier sources.

        (PyYAML 6 lets a later source of `<<: [*a, *b]` win when key strings are
        not the same object, which is neither the spec nor what Compose reads.)
        """
        merged: list[tuple[Node, Node]] = []
        seen: set[str] = set()
        explicit = [(key, value) for key, value in node.value if key.tag != MERGE_TAG]
        for key, value in node.value:
            if key.tag != MERGE_TAG:
                continue
            sources = value.value if isinstance(value, SequenceNode) else [value]
            for source in sources:
                if not isinstance(source, MappingNode):
                    raise ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"expected a mapping to merge with <<, but found {source.id}",
                        source.start_mark,
                    )  # fmt: skip
                self.flatten_mapping(source)
                for pair in source.value:
                    if pair[0].value not in seen:
                        seen.add(pair[0].value)
                        merged.append(pair)
        if len(explicit) != len(node.value):
            node.value = merged + explicit

    def construct_tagged(self, node: Node) -> Any:
        """go-yaml reads a scalar under a tag it does not know (`!override 5`, `!foo true`) as
        the string it is written as; a mapping or sequence as an untagged one."""
        if isinstance(node, ScalarNode):
            return node.value
        if isinstance(node, SequenceNode):
            return self.construct_sequence(node, deep=True)
        return self.construct_mapping(node, deep=True)

    def construct_reset(self, node: Node) -> Reset:
        """What a `!reset` tags is dropped unread: its value is kept for show, as written plain."""
        if isinstance(node, ScalarNode):
            return Reset(resolve_plain(node.value) if not node.style else node.value)
        return Reset(self.construct_tagged(node))

    def construct_override(self, node: Node) -> Override:
        return Override(self.construct_tagged(node))

    def construct_unknown(self, suffix, node):  # noqa: ANN001, ANN201
        """Compose ignores unknown local tags: the node keeps its value (a scalar, as a string)."""
        return self.construct_tagged(node)


for _tag in (_NULL, _INT, _FLOAT, TIMESTAMP_TAG, _BOOL):
    _GoConstructor.add_constructor(
        _tag,
        {
            _NULL: _GoConstructor.construct_yaml_null,
            _INT: _GoConstructor.construct_yaml_int,
            _FLOAT: _GoConstructor.construct_yaml_float,
            TIMESTAMP_TAG: _GoConstructor.construct_yaml_timestamp,
            _BOOL: _GoConstructor.construct_yaml_bool,
        }[_tag],
    )
_GoConstructor.add_constructor(RESET_TAG, _GoConstructor.construct_reset)
_GoConstructor.add_constructor(OVERRIDE_TAG, _GoConstructor.construct_override)
_GoConstructor.add_multi_constructor("!", _GoConstructor.construct_unknown)


class _GoPureLoader(Reader, Scanner, Parser, Composer, _GoConstructor, _GoResolver):
    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _GoConstructor.__init__(self)
        _GoResolver.__init__(self)


try:  # libyaml's parser, when PyYAML was built with it: the same nodes, parsed ~10x faster
    from yaml._yaml import CParser

    class _GoLoader(CParser, _GoConstructor, _GoResolver):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _GoConstructor.__init__(self)
            _GoResolver.__init__(self)

except ImportError:  # pragma: no cover - PyYAML without libyaml
    _GoLoader = _GoPureLoader  # type: ignore[misc]


@contextlib.contextmanager
def no_cycle_collection():
    """Python's cycle collector off while a document's many small, acyclic objects are made:
    its full passes would otherwise cost time growing with the square of the document's size."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _collection_without_resets(node: Node) -> Node:
    """A copy of `node` with every `!reset` entry below it left out (not below !override)."""
    if node.tag == OVERRIDE_TAG:
        return node
    if isinstance(node, MappingNode):
        value = [(k, _collection_without_resets(v)) for k, v in node.value if v.tag != RESET_TAG]
    elif isinstance(node, SequenceNode):
        value = [_collection_without_resets(v) for v in node.value if v.tag != RESET_TAG]
    else:
        return node
    return type(node)(node.tag, value, node.start_mark, node.end_mark, node.flow_style)


def _detach_resets_from_aliases(root: Node) -> None:
    """Make `!reset` act only where it is written, as in Compose.

    Compose removes a `!reset` entry from its anchored mapping the first time it
    walks it, so an alias to that mapping (or a `<<` merge of it) no longer
    carries the reset. An alias straight to a `!reset` node, or to an
    `!override` node, keeps its tag. PyYAML shares one node for the anchor and
    its aliases; every later use of a mapping or sequence gets a copy without
    the resets.
    """
    visited: set[int] = set()

    def visit(node: Node) -> Node:
        if id(node) in visited:
            return _collection_without_resets(node) if node.tag != RESET_TAG else node
        visited.add(id(node))
        if node.tag in (RESET_TAG, OVERRIDE_TAG):
            return node
        if isinstance(node, MappingNode):
            node.value = [(key, visit(value)) for key, value in node.value]
        elif isinstance(node, SequenceNode):
            node.value = [visit(value) for value in node.value]
        return node

    visit(root)


def compose_node(text: str) -> Node | None:
    """The YAML node graph of a document (marks give lines and columns), or None if empty."""
    loader = _GoLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


YAML_HINT = "check the indentation and the quoting at that line (tabs are not allowed)"


def load_compose_text(text: str, source: str = "<string>") -> dict:
    """Parse one compose document as Compose sees it; UserError names source and line.

    An empty document is an empty mapping, as Compose treats it.
    """
    if len(text) > MAX_TEXT_BYTES:
        raise UserError(f"{source}: larger than {MAX_TEXT_BYTES >> 20} MiB: not a compose file",
                        hint=HOSTILE_HINT)
    loader = _GoLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return {}  # Compose accepts an empty (or comment-only) file as an empty overlay
        try:
            check_expansion(root, source)
        except AliasCycle:
            walk_as_compose(root, source)  # Compose's words for the cycles its walk finds
            raise
        walk_as_compose(root, source)
        check_keys(root, source)
        _detach_resets_from_aliases(root)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}: " if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        if isinstance(exc, yaml.composer.ComposerError) and "single document" in str(exc):
            problem = "more than one YAML document; a compose file here holds exactly one"
        raise UserError(f"{source}: {line}{problem}", hint=YAML_HINT) from None
    except yaml.YAMLError as exc:
        raise UserError(f"{source}: invalid YAML: {exc}", hint=YAML_HINT) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise UserError(f"{source}: the top level must be a mapping, not {type(data).__name__}",
                        hint="a compose file is keys such as services:, volumes:, networks:")
    return data


def read_compose_text(path: str | os.PathLike) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(MAX_TEXT_BYTES + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{os.fspath(path)}: cannot read: {exc}",
                        hint="a readable UTF-8 text file is expected there") from None


def load_compose_file(path: str | os.PathLike) -> dict:
    """Read and parse a compose file; UserError if unreadable or not a mapping."""
    return load_compose_text(read_compose_text(path), os.fspath(path))
