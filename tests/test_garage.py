"""Garage bootstrap: parsers on recorded real-format outputs, and the decision logic against a
fake CLI that keeps state (the engine test runs the same bootstrap on the stand-in image)."""

from __future__ import annotations

from pathlib import Path

import pytest

from compose_tunnel.bootstrap import BootstrapError
from compose_tunnel.garage import (
    CommandResult,
    GarageKey,
    bootstrap,
    has_read_write,
    parse_key,
    parse_key_id,
    parse_layout,
    parse_node_id,
)

OUTPUTS = Path(__file__).parent / "garage_outputs"
NODE = "3b6f5e0c1d2a4b8e9f7061a2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6"
KEY_ID = "GK31c2f218a2e44f485b94239e"
SECRET = "b892c18bd37fa43f3e3e0bdc39c6e0cb8f2a7d61e4b9c0d5a6f7e8d9c0b1a2f3"
BUCKET, KEY = "reflector-media", "reflector"


def sample(name: str) -> str:
    return (OUTPUTS / name).read_text()


# ---- parsers -------------------------------------------------------------------------------

def test_node_id_with_and_without_public_address():
    assert parse_node_id(sample("v1/node_id_q.txt")) == NODE
    assert parse_node_id(sample("v1/node_id_q_no_public_addr.txt")) == NODE
    with pytest.raises(ValueError):
        parse_node_id("Error: Unable to read node key\n")


@pytest.mark.parametrize("name, expected", [
    ("v1/layout_show_empty.txt", (False, 0)),
    ("v1/layout_show_staged.txt", (False, 0)),  # assigned but not applied: still no role
    ("v1/layout_show_assigned.txt", (True, 1)),
    ("v2/layout_show_empty.txt", (False, 0)),
    ("v2/layout_show_assigned.txt", (True, 1)),
])
def test_layout(name, expected):
    assert parse_layout(sample(name)) == expected


def test_layout_version_is_read_not_assumed():
    text = sample("v1/layout_show_assigned.txt").replace("version: 1", "version: 7")
    assert parse_layout(text) == (True, 7)
    with pytest.raises(ValueError):
        parse_layout("==== CURRENT CLUSTER LAYOUT ====\n")


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_key_create_and_show_secret(version):
    for name in ("key_create.txt", "key_info_show_secret.txt"):
        assert parse_key(sample(f"{version}/{name}")) == GarageKey(KEY_ID, SECRET)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_redacted_secret_is_not_a_secret(version):
    text = sample(f"{version}/key_info.txt")
    assert parse_key_id(text) == KEY_ID
    with pytest.raises(ValueError):
        parse_key(text)


@pytest.mark.parametrize("name, expected", [
    ("v1/bucket_info_new.txt", False),
    ("v1/bucket_info_allowed.txt", True),
    ("v1/bucket_info_read_only.txt", False),
    ("v2/bucket_info_new.txt", False),
    ("v2/bucket_info_allowed.txt", True),
])
def test_bucket_permissions(name, expected):
    assert has_read_write(sample(name), KEY_ID) is expected


def test_key_repr_hides_the_secret():
    assert SECRET not in repr(GarageKey(KEY_ID, SECRET))


# ---- bootstrap against a stateful fake CLI -------------------------------------------------

class FakeGarage:
    """Answers like garage (v1 or v2 wording) from the recorded samples, keeping state."""

    def __init__(self, version: str = "v1") -> None:
        self.version = version
        self.layout_version = 0
        self.staged = False
        self.bucket = False
        self.key = False
        self.allowed = False
        self.calls: list[list[str]] = []
        self.fail: dict[str, CommandResult] = {}  # "bucket create" -> forced result

    def out(self, name: str) -> CommandResult:
        path = OUTPUTS / self.version / name
        if not path.exists():
            path = OUTPUTS / "v1" / name
        return CommandResult(0, path.read_text(), "")

    @staticmethod
    def err(message: str) -> CommandResult:
        return CommandResult(1, "", f"Error: {message}\n")

    def __call__(self, args: list[str]) -> CommandResult:
        self.calls.append(list(args))
        verb = " ".join(args[:2])
        if verb in self.fail:
            return self.fail[verb]
        if args == ["node", "id", "-q"]:
            return self.out("node_id_q.txt")
        if args == ["layout", "show"]:
            if self.layout_version:
                return self.out("layout_show_assigned.txt")
            return self.out("layout_show_staged.txt" if self.staged else "layout_show_empty.txt")
        if verb == "layout assign":
            assert args[2:] == ["-z", "dc1", "-c", "1G", NODE]
            self.staged = True
            return self.out("layout_assign.txt")
        if verb == "layout apply":
            if args[2:] != ["--version", str(self.layout_version + 1)]:
                return self.err("Invalid new layout version")
            self.layout_version, self.staged = self.layout_version + 1, False
            return self.out("layout_apply.txt")
        if verb == "bucket info":
            if not self.bucket:
                return self.err(f"Bucket not found / several matching buckets: {args[2]}")
            return self.out("bucket_info_allowed.txt" if self.allowed else "bucket_info_new.txt")
        if verb == "bucket create":
            self.bucket = True
            return self.out("bucket_create.txt")
        if verb == "key info":
            if not self.key:
                return self.err("0 matching keys")
            return self.out("key_info_show_secret.txt" if "--show-secret" in args else "key_info.txt")
        if verb == "key create":
            self.key = True
            return self.out("key_create.txt")
        if verb == "bucket allow":
            assert args[2:] == [BUCKET, "--read", "--write", "--key", KEY]
            assert self.bucket and self.key
            self.allowed = True
            return self.out("bucket_allow.txt")
        raise AssertionError(f"unexpected garage command {args}")

    def verbs(self) -> list[str]:
        return [" ".join(call[:2]) for call in self.calls]


def run_bootstrap(fake: FakeGarage, **kwargs):
    return bootstrap(fake, bucket=BUCKET, key_name=KEY, sleep=lambda _s: None, **kwargs)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_fresh_node_is_set_up_then_left_alone(version):
    fake = FakeGarage(version)
    key, actions = run_bootstrap(fake)
    assert key == GarageKey(KEY_ID, SECRET)
    assert actions == ["layout assigned (version 1)", f"bucket {BUCKET} created",
                       f"key {KEY} created", f"key {KEY} allowed to read and write {BUCKET}"]
    assert fake.verbs() == ["node id", "layout show", "layout assign", "layout apply",
                            "bucket info", "bucket create", "key info", "key create", "bucket allow"]

    fake.calls.clear()
    again, actions = run_bootstrap(fake, known_secret=key.secret)
    assert (again, actions) == (key, [])
    assert fake.verbs() == ["node id", "layout show", "bucket info", "key info"]
    assert ["key", "info", KEY, "--show-secret"] not in fake.calls  # the stored secret is enough


def test_lost_secret_is_read_back_with_show_secret():
    fake = FakeGarage()
    run_bootstrap(fake)
    fake.calls.clear()
    key, actions = run_bootstrap(fake, known_secret=None)
    assert key == GarageKey(KEY_ID, SECRET) and actions == []
    assert ["key", "info", KEY, "--show-secret"] in fake.calls


def test_interrupted_run_applies_the_staged_layout_with_the_next_version():
    fake = FakeGarage()
    fake.staged = True  # a previous run died between assign and apply
    fake.layout_version = 0
    _key, actions = run_bootstrap(fake)
    assert actions[0] == "layout assigned (version 1)"
    assert ["layout", "apply", "--version", "1"] in fake.calls


def test_missing_permission_is_granted_on_an_existing_bucket_and_key():
    fake = FakeGarage()
    fake.layout_version, fake.bucket, fake.key = 1, True, True
    _key, actions = run_bootstrap(fake, known_secret=SECRET)
    assert actions == [f"key {KEY} allowed to read and write {BUCKET}"]


def test_node_not_ready_yet_is_retried():
    fake = FakeGarage()
    not_ready = CommandResult(1, "", "Error: Unable to read node key. It will be generated ...\n")
    answers = iter([not_ready, not_ready])
    original = fake.__call__

    def flaky(args):
        if args[:2] == ["node", "id"]:
            nxt = next(answers, None)
            if nxt is not None:
                return nxt
        return original(args)

    slept: list[float] = []
    key, _ = bootstrap(flaky, bucket=BUCKET, key_name=KEY, sleep=slept.append, delay=0.5)
    assert key.key_id == KEY_ID and slept == [0.5, 0.5]


def test_node_never_ready_gives_the_last_error():
    def down(args):
        return CommandResult(1, "", "Error: Unable to connect to destination RPC host.\n")

    with pytest.raises(BootstrapError) as caught:
        bootstrap(down, bucket=BUCKET, key_name=KEY, sleep=lambda _s: None, attempts=3)
    assert caught.value.message == \
        "garage node id -q failed: Error: Unable to connect to destination RPC host."


def test_failure_names_the_command_and_its_last_stderr_line_but_never_the_secret():
    fake = FakeGarage()
    run_bootstrap(fake)
    fake.allowed = False
    fake.fail["bucket allow"] = CommandResult(
        1, f"Secret key: {SECRET}\n", "some detail\nError: Could not reach quorum of 1\n")
    with pytest.raises(BootstrapError) as caught:
        run_bootstrap(fake, known_secret=SECRET)
    message = str(caught.value)
    assert message.startswith(
        f"garage bucket allow {BUCKET} --read --write --key {KEY} failed: "
        "Error: Could not reach quorum of 1")
    assert SECRET not in message


def test_create_failure_is_reported():
    fake = FakeGarage()
    fake.fail["bucket create"] = CommandResult(1, "", "Error: Bucket reflector-media already exists\n")
    with pytest.raises(BootstrapError, match="garage bucket create reflector-media failed"):
        run_bootstrap(fake)


def test_several_keys_with_the_name_is_an_error_not_a_third_key():
    fake = FakeGarage()
    fake.layout_version, fake.bucket = 1, True
    fake.fail["key info"] = CommandResult(1, "", sample("v1/key_info_several.stderr"))
    with pytest.raises(BootstrapError, match="several Garage keys are named reflector"):
        run_bootstrap(fake)
    assert "key create" not in fake.verbs()


def test_unexpected_output_is_a_user_error():
    fake = FakeGarage()
    fake.fail["layout show"] = CommandResult(0, "something else entirely\n", "")
    with pytest.raises(BootstrapError, match="unexpected output"):
        run_bootstrap(fake)


def test_the_four_reads_run_up_front_and_each_answers_once():
    """prefetched(): a fresh node and a set-up one end as with the plain sequence; a replay runs
    the four reads once each (side by side) and nothing else."""
    from compose_tunnel.garage import prefetched

    reads = [["node", "id", "-q"], ["layout", "show"], ["bucket", "info", BUCKET], ["key", "info", KEY]]
    fresh, plain = FakeGarage(), FakeGarage()
    first = bootstrap(prefetched(fresh, reads), bucket=BUCKET, key_name=KEY, sleep=lambda _s: None)
    assert first == run_bootstrap(plain)
    fresh.calls.clear()
    again = bootstrap(prefetched(fresh, reads), bucket=BUCKET, key_name=KEY, known_secret=first[0].secret,
                      sleep=lambda _s: None)
    assert again == (first[0], [])
    assert sorted(fresh.verbs()) == ["bucket info", "key info", "layout show", "node id"]


def test_reads_of_a_node_not_ready_are_not_reused():
    """A read that failed because the node was starting must not stand for `the bucket is
    missing`: with node id or layout show failing up front, every read runs again in order."""
    from compose_tunnel.garage import prefetched

    fake = FakeGarage()
    run_bootstrap(fake)  # set up: bucket and key exist
    starting = {"node id": 1}

    def slow_start(args):
        if " ".join(args[:2]) == "node id" and starting["node id"]:
            starting["node id"] -= 1
            return FakeGarage.err("Unable to read node key")
        return fake(args)

    reads = [["node", "id", "-q"], ["layout", "show"], ["bucket", "info", BUCKET], ["key", "info", KEY]]
    fake.calls.clear()
    runner = prefetched(slow_start, reads)
    key, actions = bootstrap(runner, bucket=BUCKET, key_name=KEY, sleep=lambda _s: None)
    assert actions == [] and "bucket create" not in fake.verbs()
    assert fake.verbs().count("bucket info") == 2  # up front, then again in order
