"""Compose YAML written so that both a YAML 1.1 reader (PyYAML) and a YAML 1.2 one (Go's, as
Compose reads it) get back exactly the values written: a string either reader would take for
something else is quoted, `!reset`/`!override` keep their tags. What Go reads is `yamlio`'s
resolution, which this module imports one way.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from yaml.emitter import Emitter
from yaml.nodes import Node, ScalarNode
from yaml.representer import SafeRepresenter
from yaml.resolver import Resolver
from yaml.serializer import Serializer

from .yamlio import no_cycle_collection, plain_tag
from .yamltags import OVERRIDE_TAG, RESET_TAG, STR_TAG, TIMESTAMP_TAG, Override, Reset, Tagged


class _BothReadersResolver(Resolver):
    """PyYAML's YAML 1.1 resolver that also flags strings Go would read as non-strings.

    The serializer emits a string plain only if the resolver calls it a string,
    so a string like `on`, `1e3`, `0o17` or `2222:22` gets quoted.
    """

    def resolve(self, kind, value, implicit):  # noqa: ANN001, ANN201
        tag = super().resolve(kind, value, implicit)
        if kind is ScalarNode and implicit[0] and tag == STR_TAG and plain_tag(value) != STR_TAG:
            return plain_tag(value)
        return tag

    @classmethod
    def plain_is_str(cls, value: str, tag: str) -> bool:
        """True unless `value` is a string that a YAML 1.1 reader would not read as one."""
        return tag != STR_TAG or cls().resolve(ScalarNode, value, (True, False)) == STR_TAG


class _Representer(SafeRepresenter):
    def represent_str(self, data: str) -> ScalarNode:
        # Literal blocks keep multi-line strings readable; the emitter falls back
        # to double quotes when a block cannot hold the string exactly. Other
        # line breaks (CR, NEL, LS, PS) would be folded: only escapes keep them.
        if any(c in data for c in "\r\x85\u2028\u2029"):
            style = '"'
        else:
            style = "|" if "\n" in data else None
        return self.represent_scalar(STR_TAG, data, style=style)

    def represent_tagged(self, data: Tagged) -> Node:
        node = self.represent_data(data.value)
        if isinstance(node, ScalarNode) and node.style is None:
            # Under a custom tag Go resolves a plain scalar by its text: quote a
            # string only when its text would resolve to something else.
            plain_ok = plain_tag(node.value) == node.tag and _BothReadersResolver.plain_is_str(
                node.value, node.tag
            )
            node.style = None if plain_ok else "'"
        node.tag = RESET_TAG if isinstance(data, Reset) else OVERRIDE_TAG
        return node

    def represent_datetime(self, data: dt.datetime) -> ScalarNode:
        sep = "T" if data.tzinfo else " "
        text = data.isoformat(sep=sep)
        return self.represent_scalar(TIMESTAMP_TAG, text.replace("+00:00", "Z"))

    def ignore_aliases(self, data: Any) -> bool:
        return True  # a merged document is written out in full, without anchors


_Representer.add_representer(str, _Representer.represent_str)
_Representer.add_representer(Reset, _Representer.represent_tagged)
_Representer.add_representer(Override, _Representer.represent_tagged)
_Representer.add_representer(dt.datetime, _Representer.represent_datetime)


class _Dumper(Emitter, Serializer, _Representer, _BothReadersResolver):
    def __init__(self, stream: Any) -> None:
        Emitter.__init__(self, stream, width=1 << 16, allow_unicode=True)
        Serializer.__init__(self)
        _Representer.__init__(self, default_flow_style=False, sort_keys=False)
        _BothReadersResolver.__init__(self)

    def choose_scalar_style(self) -> str:
        """Let `!reset null` / `!override 8080` stay plain (PyYAML quotes every tagged scalar)."""
        if self.event.tag in (RESET_TAG, OVERRIDE_TAG) and not self.event.style:
            if self.analysis is None:
                self.analysis = self.analyze_scalar(self.event.value)
            if not self.analysis.empty and self.analysis.allow_block_plain and not self.flow_level:
                return ""
        return super().choose_scalar_style()

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # `- item` indented under its key


try:  # libyaml's emitter: the same values, written ~5x faster (sequences then sit at their key's
    # indentation, `key:\n- item`, and a tagged plain scalar stays plain by libyaml's own rule)
    from yaml._yaml import CEmitter

    class _CDumper(CEmitter, _Representer, _BothReadersResolver):
        def __init__(self, stream: Any) -> None:
            CEmitter.__init__(self, stream, width=1 << 16, allow_unicode=True)
            _Representer.__init__(self, default_flow_style=False, sort_keys=False)
            _BothReadersResolver.__init__(self)

except ImportError:  # pragma: no cover - PyYAML without libyaml
    _CDumper = _Dumper  # type: ignore[misc]


def dump_compose_yaml(doc: dict) -> str:
    """Block-style YAML in the input's key order; same input, byte-identical output."""
    stream = io.StringIO()
    dumper = _CDumper(stream)
    with no_cycle_collection():
        _dump(dumper, doc)
    return stream.getvalue()


def _dump(dumper: Any, doc: dict) -> None:
    try:
        dumper.open()
        dumper.represent(doc)
        dumper.close()
    finally:
        dumper.dispose()
