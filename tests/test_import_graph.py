"""The package imports one way: no module imports, at any depth, a module that imports it.

The guide's rule ("no module imports a module that imports it, not even inside a function"),
checked on the package's own source with ast, not on what one run happens to import:
- every `import x`, `from . import x`, `from .x import y`, `from ..x import y` and
  `from compose_tunnel.x import y`, wherever it is written: at the top, inside a function (how
  Python lets a loop through at run time), or under `if TYPE_CHECKING:`;
- TYPE_CHECKING imports count: a module naming another's type depends on it as much as one
  calling it, and a loop kept for the type checker alone is still one for whoever reads, moves
  or splits the code (the loop between plan and reflector was half a TYPE_CHECKING import);
- importing `a.b.c` runs the packages `a` and `a.b` first, so a module depends on the packages
  above it: a package whose __init__ imports its own modules is in a loop with each of them;
- `importlib.import_module` and `__import__` with a literal name count as imports; with any
  other argument the check fails, as it cannot follow them.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

import pytest

import compose_tunnel

# Loops another change is breaking, each with who breaks it. The test fails on a loop not
# listed, and on a listed one that is gone, so an entry cannot outlive its loop.
KNOWN_LOOPS: dict[frozenset[str], str] = {}  # a loop allowed for a while, with why; none now


class Import(NamedTuple):
    target: str  # the module or package named, as written (made absolute)
    where: str  # file:line (context): the statement


class Unfollowable(Exception):
    """An import whose target the source does not spell out."""


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _absolute(name: str, level: int, package: str) -> str:
    """`from ..x import` in a module of `package`, as an absolute name."""
    if not level:
        return name
    base = package.split(".")
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_in(path: Path, package: str) -> list[Import]:
    """Every import written in a file whose relative imports start at `package`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[Import] = []

    def record(target: str, node: ast.AST, context: str) -> None:
        found.append(Import(target, f"{path.name}:{node.lineno} ({context})"))

    def visit(node: ast.AST, context: str) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, "under TYPE_CHECKING")
            for child in node.orelse:
                visit(child, context)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            context = f"inside {node.name}()"
        if isinstance(node, ast.Import):
            for alias in node.names:
                record(alias.name, node, context)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node.module or "", node.level, package)
            record(module, node, context)
            for alias in node.names:  # `from . import x`: x may be a module
                record(f"{module}.{alias.name}", node, context)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("import_module", "__import__"):
                first = node.args[0] if node.args else None
                if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    raise Unfollowable(f"{path.name}:{node.lineno}: {name}() of a name not written out")
                level = len(first.value) - len(first.value.lstrip("."))
                record(_absolute(first.value.lstrip("."), level, package), node, context)
        for child in ast.iter_child_nodes(node):
            visit(child, context)

    visit(tree, "top level")
    return found


def modules_of(root: Path) -> dict[str, tuple[Path, bool]]:
    """Each module of the package in directory `root`: its file, and whether it is a package."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def import_graph(root: Path) -> dict[str, dict[str, str]]:
    """module -> {module of the same package it imports: where, first seen}; a module also
    imports the packages above it and above each module it names."""
    modules = modules_of(root)
    graph: dict[str, dict[str, str]] = {}
    for name, (path, is_package) in modules.items():
        edges = graph.setdefault(name, {})
        for parent in _with_parents(name)[:-1]:
            edges.setdefault(parent, "its package, imported first")
        for imported in imports_in(path, name if is_package else name.rpartition(".")[0]):
            for target in _with_parents(imported.target):
                if target in modules and target != name:
                    edges.setdefault(target, imported.where)
    return graph


def loops(graph: dict[str, dict[str, str]]) -> list[set[str]]:
    """The strongly connected parts of more than one module: in each, every module imports,
    at some depth, every other (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            part = set()
            while True:
                member = stack.pop()
                part.add(member)
                if member == node:
                    break
            if len(part) > 1:
                found.append(part)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def describe(part: set[str], graph: dict[str, dict[str, str]], package: str) -> str:
    """A loop's modules, and one cycle through it, each step with the import that makes it."""
    def short(name: str) -> str:
        return name.removeprefix(package + ".")

    start = min(part)
    paths = {start: [start]}
    queue = [start]
    while queue:  # breadth first: the shortest way back to the start
        node = queue.pop(0)
        for other in sorted(graph[node]):
            if other == start:
                cycle = paths[node] + [start]
                steps = [f"    {short(a)} -> {short(b)}: {graph[a][b]}" for a, b in zip(cycle, cycle[1:])]
                return f"import loop among {', '.join(sorted(map(short, part)))}; one cycle:\n" + "\n".join(steps)
            if other in part and other not in paths:
                paths[other] = paths[node] + [other]
                queue.append(other)
    raise AssertionError(f"no cycle through {part}")


def problems(graph: dict[str, dict[str, str]], known: dict[frozenset[str], str], package: str) -> list[str]:
    """What breaks the rule: each loop not in `known`, and each entry of `known` whose loop is gone."""
    found = {frozenset(name.removeprefix(package + ".") for name in part): part for part in loops(graph)}
    told = [describe(part, graph, package) for key, part in found.items() if key not in known]
    told += [f"the loop of {', '.join(sorted(key))} ({why}) is gone: remove it from KNOWN_LOOPS"
             for key, why in known.items() if key not in found]
    return told


def test_no_module_of_the_package_imports_a_module_that_imports_it():
    root = Path(compose_tunnel.__file__).parent
    graph = import_graph(root)
    assert len(graph) > 30 and graph["compose_tunnel.cli"]  # the whole package was read
    told = problems(graph, KNOWN_LOOPS, root.name)
    assert not told, "\n".join(told)


# --- the check itself: each kind of import is seen, so the test above can fail -------------

def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


@pytest.mark.parametrize(("files", "loop"), [
    ({"a.py": "from . import b\n", "b.py": "from . import a\n"}, {"a", "b"}),
    ({"a.py": "def f():\n    from .b import g\n", "b.py": "from .a import f\n"}, {"a", "b"}),
    ({"a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n",
      "b.py": "import pkg.a\n"}, {"a", "b"}),
    ({"a.py": "class A:\n    def m(self):\n        from pkg.c import x\n",
      "b.py": "from .a import A\n", "c.py": "from pkg import b\n"}, {"a", "b", "c"}),
    ({"sub/__init__.py": "", "sub/x.py": "from ..y import f\n", "y.py": "from .sub.x import g\n"},
     {"sub.x", "y"}),
    ({"sub/__init__.py": "from .x import f\n", "sub/x.py": "from .y import g\n", "sub/y.py": ""},
     {"sub", "sub.x", "sub.y"}),  # a package re-exporting its module: its modules import it
    ({"a.py": "import importlib\nimportlib.import_module('.b', __package__)\n", "b.py": "from . import a\n"},
     {"a", "b"}),
])
def test_the_check_finds_a_loop_made_by_any_kind_of_import(tmp_path, files, loop):
    root = write_package(tmp_path, {"__init__.py": "", **files})
    graph = import_graph(root)
    assert [{name.removeprefix("pkg.") for name in part} for part in loops(graph)] == [loop]
    assert problems(graph, {}, "pkg")[0].startswith("import loop among ")


def test_one_way_imports_and_names_that_are_not_modules_make_no_loop(tmp_path):
    root = write_package(tmp_path, {
        "__init__.py": '__version__ = "1"\n', "__main__.py": "from .cli import main\n",
        "cli.py": "from . import __version__\nimport os\nfrom .core import run\n"
                  "def main():\n    from .work.up import up\n",
        "core.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .data import Data\n",
        "data.py": "", "work/__init__.py": '"""nothing"""\n',
        "work/up.py": "from ..core import run\nfrom .steps import steps\n", "work/steps.py": "from .. import data\n",
    })
    graph = import_graph(root)
    assert graph["pkg.work.up"] == {"pkg": "its package, imported first", "pkg.work": "its package, imported first",
                                    "pkg.core": "up.py:1 (top level)", "pkg.work.steps": "up.py:2 (top level)"}
    assert graph["pkg.cli"]["pkg.work.up"] == "cli.py:5 (inside main())"
    assert graph["pkg.core"] == {"pkg": "its package, imported first", "pkg.data": "core.py:3 (under TYPE_CHECKING)"}
    assert loops(graph) == [] and problems(graph, {}, "pkg") == []


def test_a_known_loop_that_is_gone_fails_too(tmp_path):
    graph = import_graph(write_package(tmp_path, {"__init__.py": "", "a.py": "from . import b\n", "b.py": ""}))
    assert problems(graph, {frozenset({"a", "b"}): "issue 0"}, "pkg") == [
        "the loop of a, b (issue 0) is gone: remove it from KNOWN_LOOPS"]
    looping = import_graph(write_package(tmp_path, {"b.py": "def f():\n    from .a import x\n"}))
    assert problems(looping, {frozenset({"a", "b"}): "issue 0"}, "pkg") == []


def test_an_import_the_check_cannot_follow_fails_it(tmp_path):
    root = write_package(tmp_path, {"__init__.py": "", "a.py": "import importlib\nname = 'b'\n"
                                    "importlib.import_module(name)\n"})
    with pytest.raises(Unfollowable, match=r"a.py:3: import_module\(\) of a name not written out"):
        import_graph(root)


def test_every_package_of_the_source_is_installed():
    """A package of modules (workflows/) that pyproject.toml does not list would be left out
    of an installed copy, though an editable checkout finds it."""
    import tomllib

    root = Path(compose_tunnel.__file__).parent
    listed = tomllib.loads((root.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = {name for name, (_path, is_package) in modules_of(root).items() if is_package}
    assert "compose_tunnel.workflows" in found and found <= set(listed)
