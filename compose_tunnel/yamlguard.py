"""Checks on a compose file's YAML node graph, before any value is constructed: what Compose
refuses there (duplicate and non-string keys, aliases used inside what they name) and the
bounds that keep a hostile file (an alias bomb, deep nesting) from costing time or memory.
"""

from __future__ import annotations

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import UserError
from .yamltags import MERGE_TAG, OVERRIDE_TAG, RESET_TAG, STR_TAG

def check_keys(root: Node, source: str) -> None:
    """Reject what Compose rejects before merging: duplicate keys and non-string keys.

    Runs on the composed node graph, before `<<` merge keys are flattened, so keys
    brought in by a merge key are not duplicates (they may be overridden).
    """
    seen: set[int] = set()
    stack = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node.value))
        if not isinstance(node, MappingNode):
            continue
        first_line: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if not isinstance(key, ScalarNode) or key.tag not in (STR_TAG, MERGE_TAG):
                shown = key.value if isinstance(key, ScalarNode) else "a collection"
                where = path or "the top level"
                raise UserError(f"{source}: line {line}: non-string key in {where}: {shown}",
                                hint="quote the key: a compose file's keys are strings")
            if key.value in first_line:
                raise UserError(
                    f"{source}: line {line}: duplicate key {key.value!r}"
                    f" (already defined at line {first_line[key.value]})",
                    hint="keep one of them: a key appears once in a mapping",
                )
            first_line[key.value] = line
            stack.append((value, f"{path}.{key.value}" if path else key.value))


MAX_TEXT_BYTES = 8 << 20  # a compose file this big is a mistake, not a stack
MAX_EXPANDED_NODES = 1_000_000  # nodes once every alias is expanded: a YAML alias bomb's bound
MAX_DEPTH = 200
HOSTILE_HINT = "compose-tunnel reads no compose file this large; write the values out, or split it"


class AliasCycle(UserError):
    """An alias inside the node it names."""


def walk_as_compose(root: Node, source: str) -> None:
    """Compose's own walk of a file before it decodes it (compose-go's ResetProcessor): every
    alias is followed where it is used; one used again at a path inside (or around) the path of
    an earlier use in the same service is a cycle, which Compose refuses, even where the
    document has none (an anchor merged into a service with `<<` and aliased inside it too).
    What a `!reset` tags is dropped unread, cycles included; an `!override`d value is not walked
    (its own cycles fail when Compose decodes it, as in `_check_expansion`)."""
    reached: set[int] = set()
    uses: dict[int, list[str]] = {}
    budget = MAX_EXPANDED_NODES
    stack: list[tuple[Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        budget -= 1
        if budget < 0:
            raise UserError(f"{source}: line {node.start_mark.line + 1}: YAML aliases expand to "
                            f"more than {MAX_EXPANDED_NODES:,} nodes (an alias bomb?)", hint=HOSTILE_HINT)
        if ".<<" in path:
            path = path.replace(".<<", "", 1)
        if id(node) in reached:  # an alias of a node walked before
            for earlier in uses.get(id(node), []):
                if earlier == path or "<<" in earlier or "<<" in path:
                    continue
                if (path.startswith(earlier + ".") or earlier.startswith(path + ".")) \
                        and not _in_different_services(path, earlier):
                    raise UserError(f"{source}: line {node.start_mark.line + 1}: cycle detected: node at path "
                                    f"{path} references node at path {earlier}",
                                    hint="an alias cannot be used inside what it names (nor, in a "
                                         "service, an anchor merged with << and aliased in it too)")
            uses.setdefault(id(node), []).append(path)
        reached.add(id(node))
        if node.tag == RESET_TAG:
            if _cyclic(node):
                node.value = [] if isinstance(node, (MappingNode, SequenceNode)) else node.value
            continue
        if node.tag == OVERRIDE_TAG:
            continue
        if isinstance(node, MappingNode):
            children = [(v, f"{path}.{k.value}" if path else str(k.value)) for k, v in node.value]
        elif isinstance(node, SequenceNode):
            children = [(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(node.value)]
        else:
            continue
        stack.extend(reversed(children))


def _in_different_services(first: str, second: str) -> bool:
    one, two = first.split("."), second.split(".")
    for index in range(min(len(one), len(two))):
        if one[index] == "services" and index + 1 < len(one) and two[index] == "services" \
                and index + 1 < len(two):
            return one[index + 1] != two[index + 1]
    return False


def _cyclic(root: Node) -> bool:
    """Whether a node contains an alias of itself or of a node around it (below it)."""
    state: dict[int, bool] = {}  # False: on the current path; True: done
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            state[id(node)] = True
            continue
        if state.get(id(node)) is False:
            return True
        if id(node) in state:
            continue
        state[id(node)] = False
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))
    return False


def check_expansion(root: Node, source: str) -> None:
    """Refuse a document whose aliases expand beyond bounds (billion laughs), before anything
    expands them: sizes are counted once per node, so this takes time linear in the text."""
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    on_path: set[int] = set()
    while stack:
        node, done = stack.pop()
        if done:
            on_path.discard(id(node))
            children = [child for child in _children(node) if child.tag != RESET_TAG]
            sizes[id(node)] = min(1 + sum(sizes[id(c)] for c in children), MAX_EXPANDED_NODES + 1)
            depths[id(node)] = 1 + max((depths[id(c)] for c in children), default=0)
            if sizes[id(node)] > MAX_EXPANDED_NODES:
                raise UserError(f"{source}: line {node.start_mark.line + 1}: YAML aliases expand to "
                                f"more than {MAX_EXPANDED_NODES:,} nodes (an alias bomb?)", hint=HOSTILE_HINT)
            if depths[id(node)] > MAX_DEPTH:
                raise UserError(f"{source}: line {node.start_mark.line + 1}: YAML nested deeper "
                                f"than {MAX_DEPTH} levels", hint=HOSTILE_HINT)
            continue
        if id(node) in sizes:
            continue
        if id(node) in on_path:
            raise AliasCycle(f"{source}: line {node.start_mark.line + 1}: YAML alias cycle detected: "
                            "an anchor's value contains itself", hint="an anchor cannot contain its own alias")
        on_path.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node)
                     if id(child) not in sizes and child.tag != RESET_TAG)


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []
