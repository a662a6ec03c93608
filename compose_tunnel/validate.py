"""Compose validation before anything is written: the project as Compose builds it, checked
where and as Compose checks it, every error pointing into the file a person fixes.

Compose never checks an overlay on its own: it merges file after file and validates what the
files made so far (after each file, once de-duplicated), then checks the whole project
(module `consistency`). A `Validation` follows one merge the same way: `merge` hands it each file
as it folds it in, with its own folding rules, and this module keeps Compose's model of the
project beside the merged document (modules `interpolation`, `unicity`, `canonical`) and checks
it with Compose's schema (module `schema`). An error names the file, line and column of the
value at fault (the last file that set it; where a merged value came from several files, the
others too), the YAML path and Compose's words.

The built-in profiles are valid in every combination (the tests check them): a merge of them alone
makes no model and loads no validator.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Any, Callable

from .canonical import canonical, set_defaults
from .interpolation import interpolate
from .model import ModelError
from .unicity import unique
from .errors import UserError
from .yamltags import plain

SCHEMA_HINT = "the Compose file reference lists the keys and types each place takes"
PROJECT_HINT = "fix it in the file named, or in a file given after it"

Path = tuple
Files = list  # of (source, text, document) as loaded, in the order they were read
Fold = Callable[[dict, dict, list, str], dict]  # merge's rules: (model, file, tagged paths, source)


class Validation:
    """Compose's model of one merge, built file by file beside it, and its checks."""

    def __init__(self, files: Files, fold: Fold) -> None:
        self.files = files
        self.fold = fold
        self.model: dict = {}
        self.checking = False  # from the first file not known valid on, every step is checked

    def add(self, doc: dict, tagged: list, source: str, check: bool) -> None:
        """Fold one file in as Compose does (its `extends` and `include` resolved, its tags
        collected in `tagged`): interpolate, merge, de-duplicate, validate, make canonical."""
        self.checking = self.checking or check
        try:
            self.model = unique(self.fold(self.model, interpolate(doc), tagged, source))
            if self.checking:
                self._check_schema(source)
            self.model.pop("version", None)  # obsolete: Compose ignores it once validated
            self.model = unique(canonical(self.model))
        except ModelError as error:
            raise self.refusal(error, source) from None

    def finish_files(self) -> None:
        """What Compose does once every file of a project is in: defaults, the resources' rules."""
        if not self.checking:
            return
        from .consistency import check_resources

        set_defaults(self.model)
        try:
            check_resources(self.model)
        except ModelError as error:
            raise self.refusal(error) from None

    def finish_project(self) -> None:
        """Compose's checks of the whole project (not of an included one)."""
        if not self.checking:
            return
        from .consistency import check_project

        try:
            if not self.model:
                raise ModelError((), "empty compose file")
            check_project(self.model)
        except ModelError as error:
            raise self.refusal(error) from None

    def read_alone(self, doc: dict, source: str) -> None:
        """A file Compose reads on its own, as it reads an `extends.file`: not validated, but
        interpolated, de-duplicated and made canonical (what it cannot read, it refuses)."""
        alone = Validation(self.files, lambda model, step, tagged, source: step)
        alone.add(doc, [], source, check=False)

    def _check_schema(self, source: str) -> None:
        from .schema import first_error

        error = first_error(self.model)
        if error is None:
            return
        extra = [error.extra] if error.extra else []
        also: list[Path] = []
        if error.validator == "uniqueItems":
            from .schema import duplicates

            first, second = duplicates(error.instance)
            also = [(*error.path, first)]
            error.path = [*error.path, second]
        raise self.located(error.path, error.message, SCHEMA_HINT, source, extra, also, elsewhere=bool(also))

    def refusal(self, error: ModelError, source: str | None = None) -> UserError:
        return self.located(error.path, error.message, error.hint or PROJECT_HINT, source, also=error.also)

    def located(self, path: Path, message: str, hint: str, source: str | None = None,
                extra: list[str] | None = None, also: list[Path] | None = None,
                elsewhere: bool = False) -> UserError:
        """A UserError at the file, line and column that set `path` (files read so far)."""
        where, others = locate(self.files, list(path), self.model, also or [], elsewhere)
        if where is None:
            shown = source or " + ".join(s for s, _, _ in self.files) or "<compose>"
            return UserError(f"{shown}: {message}" + _parenthesised(extra or []), hint)
        notes = list(extra or [])
        if others:
            notes.append("also set in " + ", ".join(others))
        return UserError(f"{where}: {message}" + _parenthesised(notes), hint)


def _parenthesised(notes: list[str]) -> str:
    return "".join(f" ({note})" for note in notes if note)


# --- where a value of the model was written -----------------------------------------------------

def locate(files: Files, path: list, model: dict, also: list[Path],
           elsewhere: bool = False) -> tuple[str | None, list[str]]:
    """`FILE:LINE:COL` of the last file read that sets `path` (the deepest part of it any file
    sets), and the same of the other files that set it too, when it is a merged value."""
    found = _settings(files, path, model)
    if not found:
        return None, []
    depth = max(d for d, _, _ in found)
    best = [(d, f, p) for d, f, p in found if d == depth]
    _, file, file_path = best[-1]
    primary = _shown(file, file_path)
    others: list[str] = []
    value = _at(model, path)
    merged = isinstance(value, (dict, list)) and depth == len(path)
    for extra in also:  # the other values an error is about: where the last file set each
        settings = [(d, f, p) for d, f, p in _settings(files, list(extra), model) if d == len(extra)]
        if elsewhere:  # the same value twice: where another file set it
            settings = [(d, f, p) for d, f, p in settings if f is not file]
        if settings:
            others.append(_shown(settings[-1][1], settings[-1][2]))
    if merged:
        others += [_shown(f, p) for d, f, p in best[:-1]
                   if f is not file and _contributes(_at(plain(f[2]), p), value)]
    return primary, list(dict.fromkeys(o for o in others if o != primary))


def _shown(file: tuple, file_path: list) -> str:
    source, text, _ = file
    line, column = position(text, file_path)
    return f"{source}:{line}:{column}"


def _settings(files: Files, path: list, model: dict) -> list[tuple[int, tuple, list]]:
    """(depth, file, path in that file) for every file that sets at least the first key; a
    service's value that came with `extends` is found in the service it extends."""
    found = []
    for file in files:
        doc = plain(file[2])
        depth, file_path = _walk(doc, path, model)
        if depth == 2 and len(path) > 2 and path[0] == "services":
            base = _extended(files, file, doc, path[1])
            if base is not None:
                base_depth, base_path = _walk(plain(base[0][2]), ["services", base[1], *path[2:]], None)
                if base_depth > depth:
                    found.append((base_depth, base[0], base_path))
                    continue
        if depth:
            found.append((depth, file, file_path))
    return found


def _extended(files: Files, file: tuple, doc: dict, name: str) -> tuple[tuple, str] | None:
    """(file, service) a service of a file extends, if the file is among those read."""
    service = (doc.get("services") or {}).get(name)
    extends = service.get("extends") if isinstance(service, dict) else None
    if isinstance(extends, str):
        return file, extends
    if not isinstance(extends, dict) or not isinstance(extends.get("service"), str):
        return None
    if "file" not in extends:
        return file, extends["service"]
    wanted = FilePath(str(extends["file"])).name
    for other in files:
        if FilePath(other[0]).name == wanted:
            return other, extends["service"]
    return None


def _contributes(mine: Any, merged: Any) -> bool:
    """Whether a file's value left anything in the merged one (a leaf, or a list item)."""
    if isinstance(mine, dict) and isinstance(merged, dict):
        return any(key in merged and _contributes(item, merged[key]) for key, item in mine.items())
    if isinstance(mine, list) and isinstance(merged, list):
        return any(item in merged for item in mine)
    return mine == merged


def _at(node: Any, path: list) -> Any:
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def _walk(doc: Any, path: list, model: Any) -> tuple[int, list]:
    """How deep `path` of the model goes in a file's document, and the file's own path there:
    a list item is the file's item equal to the model's (a list keeps its order), a name in a
    short-syntax list (`depends_on: [db]`) is its item."""
    node, mirror, out = doc, model, []
    for part in path:
        child = _at(mirror, [part])
        if isinstance(node, dict) and part in node:
            node, index = node[part], part
        elif isinstance(node, list) and isinstance(part, int):
            index = _same_item(node, mirror, part)
            if index is None:
                break
            node = node[index]
        elif isinstance(node, list) and isinstance(part, str) and part in node:
            index = node.index(part)
            node = node[index]
        else:
            break
        out.append(index)
        mirror = child
    return len(out), out


def _same_item(items: list, mirror: Any, part: int) -> int | None:
    if not isinstance(mirror, list) or part >= len(mirror):
        return part if part < len(items) else None
    wanted = mirror[part]
    equal = [i for i, item in enumerate(items) if item == wanted]
    if equal:
        before = sum(1 for item in mirror[:part] if item == wanted)
        return equal[min(before, len(equal) - 1)]
    return part if len(items) == len(mirror) else None


def position(text: str, path: list) -> tuple[int, int]:
    """1-based line and column of the node at `path` in a YAML text (keys of mappings point at
    the key); the deepest existing ancestor when the path goes further than the text."""
    from yaml.nodes import MappingNode, SequenceNode

    from .yamlio import compose_node

    node = compose_node(text)
    mark = node.start_mark if node is not None else None
    for part in path:
        if isinstance(node, MappingNode):
            found = _mapping_entry(node, part)
            if found is None:
                break
            key, value = found
            mark, node = key.start_mark, value
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            mark = node.start_mark
        else:
            break
    if mark is None:
        return 1, 1
    return mark.line + 1, mark.column + 1


def _mapping_entry(node, key):
    """The (key node, value node) for `key`, looking through `<<` merge keys as YAML does."""
    from yaml.nodes import MappingNode, SequenceNode

    merged = []
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            merged.extend(s for s in sources if isinstance(s, MappingNode))
        elif getattr(key_node, "value", None) == key:
            return key_node, value_node
    for source in merged:
        found = _mapping_entry(source, key)
        if found is not None:
            return found
    return None
