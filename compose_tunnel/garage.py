"""Idempotent single-node Garage bootstrap: layout, bucket, key, permission.

Garage starts with no layout, no bucket and no key; Reflector needs all three before it can
store a file. The bootstrap talks to the `garage` CLI through a `run` callable, so the product
plugs `docker compose exec -T garage /garage ...` into it and the tests plug a recorder or the
stand-in image. It reads the CLI's human output (v1.x and v2.x formats), decides what is
missing, and only does that: a second run on a ready node does nothing and reports no actions.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .bootstrap import BootstrapError, CommandResult, Exec, Runner, Step
from .errors import last_line

if TYPE_CHECKING:
    from .state import Secrets

SERVICE = "garage"
BUCKET = "reflector-media"
KEY_NAME = "reflector"
REGION = "garage"
ZONE = "dc1"
CAPACITY = "1G"
READY_ATTEMPTS = 30  # the node key and RPC port appear a moment after the container starts
READY_DELAY_SECONDS = 1.0


@dataclass(frozen=True)
class GarageKey:
    """An S3 access key. The secret never appears in repr(), so it can't leak into a log."""

    key_id: str
    secret: str

    def __repr__(self) -> str:
        return f"GarageKey(key_id={self.key_id!r}, secret='***')"


_NODE_ID = re.compile(r"^([0-9a-f]{64})(?:@\S+)?$")
_LAYOUT_VERSION = re.compile(r"^Current cluster layout version:\s*(\d+)\s*$", re.MULTILINE)
_NO_ROLES = "No nodes currently have a role in the cluster"
_KEY_ID = re.compile(r"Key ID:\s+(GK[0-9a-f]{24})\b")
_SECRET = re.compile(r"Secret key:\s+([0-9a-f]{64})\b")
_SEVERAL_KEYS = re.compile(r"\b([2-9]|\d{2,}) matching keys")  # v1 `key info` on a shared name


def parse_node_id(out: str) -> str:
    """The full 64-hex node id from `node id -q` (`<id>@<addr>:3901`, or the bare id when the
    config has no rpc_public_addr)."""
    for line in out.splitlines():
        match = _NODE_ID.match(line.strip())
        if match:
            return match.group(1)
    raise ValueError("no node id in `garage node id -q` output")


def parse_layout(out: str) -> tuple[bool, int]:
    """(has_nodes, current_version) from `layout show`.

    Only the CURRENT section counts: staged-but-unapplied roles (a run interrupted between
    assign and apply) still mean the node has no role yet.
    """
    match = _LAYOUT_VERSION.search(out)
    if not match:
        raise ValueError("no 'Current cluster layout version' in `garage layout show` output")
    current = out[: match.start()]
    has_nodes = _NO_ROLES not in current
    return has_nodes, int(match.group(1))


def parse_key_id(out: str) -> str:
    match = _KEY_ID.search(out)
    if not match:
        raise ValueError("no 'Key ID: GK...' line in the key output")
    return match.group(1)


def parse_key(out: str) -> GarageKey:
    """Key id and secret from `key create` / `key info --show-secret` (v1 lines or v2 table)."""
    key_id = parse_key_id(out)
    match = _SECRET.search(out)
    if not match:
        raise ValueError("no 64-hex 'Secret key:' in the key output (redacted?)")
    return GarageKey(key_id, match.group(1))


def has_read_write(bucket_info: str, key_id: str) -> bool:
    """Whether `bucket info` lists key_id with both R and W (rows like `  RW   GK…  name`)."""
    for line in bucket_info.splitlines():
        if key_id not in line:
            continue
        flags = line.split()[0]
        if set(flags) <= set("RWO") and "R" in flags and "W" in flags:
            return True
    return False


def _fail(args: list[str], result: CommandResult) -> BootstrapError:
    reason = last_line(result.stderr) or f"exit code {result.exit_code}"
    return BootstrapError(
        f"garage {' '.join(args)} failed: {reason}",
        "see `compose-tunnel logs garage`; the node must be running with its garage.toml",
    )


def _must(run: Runner, args: list[str]) -> CommandResult:
    result = run(args)
    if not result.ok:
        raise _fail(args, result)
    return result


def _parsed(args: list[str], result: CommandResult, parse: Callable[[str], object]):
    try:
        return parse(result.stdout)
    except ValueError as error:
        raise BootstrapError(f"garage {' '.join(args)}: unexpected output ({error})",
                        "is the image a Garage v1.x or v2.x?") from None


def _wait_ready(run: Runner, attempts: int, delay: float, sleep: Callable[[float], None]):
    """node id and layout show, retried: right after start the node key file or the RPC
    listener may not exist yet."""
    last: tuple[list[str], CommandResult] | None = None
    for attempt in range(max(attempts, 1)):
        if attempt:
            sleep(delay)
        node = run(["node", "id", "-q"])
        if not node.ok:
            last = (["node", "id", "-q"], node)
            continue
        layout = run(["layout", "show"])
        if not layout.ok:
            last = (["layout", "show"], layout)
            continue
        return node, layout
    assert last is not None
    raise _fail(*last)


def bootstrap(
    run: Runner,
    *,
    bucket: str,
    key_name: str,
    known_secret: str | None = None,
    zone: str = ZONE,
    capacity: str = CAPACITY,
    attempts: int = READY_ATTEMPTS,
    delay: float = READY_DELAY_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[GarageKey, list[str]]:
    """Make the node usable by Reflector; return its key and what was done (empty if nothing).

    The secret is shown by Garage only when the key is created: the caller stores it and
    passes it back as known_secret; without one, an existing key's secret is read with
    `key info --show-secret`. Any failing command raises BootstrapError (never with the secret).
    """
    actions: list[str] = []

    node, layout = _wait_ready(run, attempts, delay, sleep)
    node_id = _parsed(["node", "id", "-q"], node, parse_node_id)
    has_nodes, version = _parsed(["layout", "show"], layout, parse_layout)
    if not has_nodes:
        _must(run, ["layout", "assign", "-z", zone, "-c", capacity, node_id])
        _must(run, ["layout", "apply", "--version", str(version + 1)])
        actions.append(f"layout assigned (version {version + 1})")

    info = run(["bucket", "info", bucket])
    if not info.ok:
        _must(run, ["bucket", "create", bucket])
        actions.append(f"bucket {bucket} created")
        bucket_info = ""
    else:
        bucket_info = info.stdout

    existing = run(["key", "info", key_name])
    if not existing.ok and _SEVERAL_KEYS.search(existing.stderr or ""):
        raise BootstrapError(f"several Garage keys are named {key_name}",
                        "delete the extra ones with `garage key delete --yes <id>`")
    if not existing.ok:
        args = ["key", "create", key_name]
        key = _parsed(args, _must(run, args), parse_key)
        actions.append(f"key {key_name} created")
    elif known_secret:
        key_id = _parsed(["key", "info", key_name], existing, parse_key_id)
        key = GarageKey(key_id, known_secret)
    else:
        args = ["key", "info", key_name, "--show-secret"]
        key = _parsed(args, _must(run, args), parse_key)

    if not has_read_write(bucket_info, key.key_id):
        _must(run, ["bucket", "allow", bucket, "--read", "--write", "--key", key_name])
        actions.append(f"key {key_name} allowed to read and write {bucket}")
    return key, actions


def prefetched(run: Runner, reads: list[list[str]]) -> Runner:
    """`run`, with these read-only commands run at once, side by side, up front: the first call
    of each is answered from there (a replay needs nothing else), any other call runs then.
    Only while the node answered them all as ready (node id and layout show succeeded): a node
    still starting could fail a read for that reason alone, so then nothing is reused."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(reads)) as pool:
        answers = dict(zip(map(tuple, reads), pool.map(run, reads)))
    if not (answers[("node", "id", "-q")].ok and answers[("layout", "show")].ok):
        return run

    def answer(args: list[str]) -> CommandResult:
        result = answers.pop(tuple(args), None)
        return result if result is not None else run(args)

    return answer


def run_step(exec_: Exec, secrets: "Secrets") -> list[str]:
    """The bootstrap step: layout, bucket and key; the key goes into the secrets (server.env).
    Its four reads run side by side first (read-only: what they see is what the sequence would
    see, or a failure the sequence handles the same way)."""
    reads = [["node", "id", "-q"], ["layout", "show"], ["bucket", "info", BUCKET], ["key", "info", KEY_NAME]]
    key, actions = bootstrap(
        prefetched(lambda args: exec_(SERVICE, ["/garage", *args]), reads),
        bucket=BUCKET,
        key_name=KEY_NAME,
        known_secret=secrets.get("garage_secret_key"),
    )
    if (secrets.get("garage_key_id"), secrets.get("garage_secret_key")) != (key.key_id, key.secret):
        secrets.values["garage_key_id"] = key.key_id
        secrets.values["garage_secret_key"] = key.secret
        actions = actions or ["storage key stored for server.env"]
    return actions


STEP = Step(
    name="garage",
    services=(SERVICE,),
    run=run_step,
    describe="bootstrap Garage (layout, bucket, key) and write its key into server.env",
    owns=("garage_key_id", "garage_secret_key"),
)
