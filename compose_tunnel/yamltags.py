"""The tags Compose gives meaning to in a compose file, and the values that carry them.

`!reset` and `!override` are Compose's merge tags; the loader (`yamlio`), the checks on the
node graph (`yamlguard`) and the merge all need their names, so they live here, below all three.
"""

from __future__ import annotations

from typing import Any

STR_TAG = "tag:yaml.org,2002:str"
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
MERGE_TAG = "tag:yaml.org,2002:merge"
RESET_TAG = "!reset"
OVERRIDE_TAG = "!override"


class Tagged:
    """A value carried with a Compose merge tag; compares by value so tests can use ==."""

    __slots__ = ("value",)

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.value == self.value  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self.value)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


class Reset(Tagged):
    """A node tagged `!reset`: the merge removes what earlier files set at this path."""


class Override(Tagged):
    """A node tagged `!override`: the merge replaces the earlier value wholesale."""


def plain(value: Any) -> Any:
    """A loaded document as Compose validates it: `!reset` entries gone, `!override` unwrapped."""
    if isinstance(value, Override):
        return plain(value.value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [plain(v) for v in value if not isinstance(v, Reset)]
    return value
