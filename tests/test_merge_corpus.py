"""The proof of merge.py: each corpus case against the real Docker Compose v2 binary.

A case is a directory of `1.yml`, `2.yml`, … (base first). For a valid case,
`docker-compose -f 1.yml -f 2.yml … config --format json` must equal the same
command on our merged file, written into the case directory so relative paths
resolve identically; once with interpolation and once with `--no-interpolate`.
A case with `error.txt` must be rejected by both Compose and our merge, and the
text in error.txt must appear in both messages. (Compose checks short port
syntax only when it interpolates, so rejection is asserted in that mode.)
A case with `interpolated-only` is compared with interpolation only: an included project's
variables from its own env file are written into the merged file as defaults, which Compose
reads the same once it interpolates, and not at all with `--no-interpolate`.
A case with `extends-not-kept` is compared without the services' `extends`: Compose shows the
`extends` of a service whose base is empty (it extends nothing), which the flat file, standing
alone, does not keep.

Compose runs in a clean environment with a few fixed variables, so
interpolation is deterministic. All binary calls run up front, concurrently.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from compose_tunnel.errors import UserError
from compose_tunnel.merge import merge_files
from compose_tunnel.yamldump import dump_compose_yaml

CORPUS = Path(__file__).parent / "merge_corpus"
CASES = sorted(p for p in CORPUS.iterdir() if p.is_dir())
ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOME": "/nonexistent",
    "TAG": "1.27",
    "WEB_PORT": "8081",
    "DATA_DIR": "./data",
    "LEVEL": "debug",
}
MODES = ((), ("--no-interpolate",))


def _files(case: Path) -> list[Path]:
    return sorted(case.glob("[0-9]*.yml"), key=lambda p: int(p.stem))


def _compose(
    binary: Path, case: Path, files: list[str], extra: tuple[str, ...], *options: str
) -> tuple:
    args = [str(binary), "-p", "corpus", *options]
    for name in files:
        args += ["-f", name]
    args += ["config", "--format", "json", *extra]
    done = subprocess.run(args, cwd=case, env=ENV, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def _run_case(binary: Path, case: Path) -> dict:
    """Compose on the originals, our merge, and Compose on the merged file."""
    names = [p.name for p in _files(case)]
    result: dict = {"original": [_compose(binary, case, names, m) for m in MODES]}
    try:
        merged = dump_compose_yaml(merge_files(_files(case)))
    except UserError as exc:
        result["error"] = str(exc)
        return result
    result["merged_text"] = merged
    target = case / f".merged-{uuid.uuid4().hex}.yml"
    target.write_text(merged, encoding="utf-8")
    try:
        result["merged"] = [_compose(binary, case, [target.name], m) for m in MODES]
    finally:
        target.unlink()
    return result


@pytest.fixture(scope="session")
def corpus_results(compose_bin: Path) -> dict[str, dict]:
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {case.name: pool.submit(_run_case, compose_bin, case) for case in CASES}
        return {name: future.result() for name, future in futures.items()}


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Path, corpus_results: dict[str, dict]) -> None:
    result = corpus_results[case.name]
    expected_error = case / "error.txt"
    if expected_error.exists():
        needle = expected_error.read_text(encoding="utf-8").strip()
        code, _, stderr = result["original"][0]
        assert code != 0, "Compose accepted a case that claims it is rejected"
        assert needle in stderr, stderr
        assert "error" in result, "our merge accepted a case that Compose rejects"
        assert needle in result["error"]
        return
    assert "error" not in result, result.get("error")
    pairs = list(zip(MODES, result["original"], result["merged"], strict=True))
    if (case / "interpolated-only").exists():
        pairs = pairs[:1]
    for mode, original, merged in pairs:
        assert original[0] == 0, f"Compose rejects the case itself {mode}: {original[2]}"
        assert merged[0] == 0, f"Compose rejects our merge {mode}: {merged[2]}\n{result['merged_text']}"
        ours, theirs = json.loads(merged[1]), json.loads(original[1])
        if (case / "extends-not-kept").exists():
            for service in theirs.get("services", {}).values():
                service.pop("extends", None)
        assert ours == theirs, f"{mode}\n--- merged.yml\n{result['merged_text']}"


PROJECT_PROFILES = Path(__file__).parent.parent / "profiles"
PROFILE_CHAIN = ["base", "cpu", "livekit", "garage", "caddy", "tunnel", "tunnel-udp"]


def test_project_profiles_merge_like_compose(compose_bin: Path, tmp_path: Path) -> None:
    """The shipped profiles, all overlaid, merge as Compose merges them.

    Without interpolation: the profiles require variables that `generate` writes.
    The merged file lives elsewhere, so `--project-directory` anchors relative paths.
    """
    files = [PROJECT_PROFILES / f"{name}.yml" for name in PROFILE_CHAIN]
    files = [f for f in files if f.exists()]
    if len(files) < 2:
        pytest.skip("the project profiles are not there")
    merged = tmp_path / "merged.yml"
    merged.write_text(dump_compose_yaml(merge_files(files)), encoding="utf-8")
    extra = ("--no-interpolate",)
    original = _compose(compose_bin, PROJECT_PROFILES, [f.name for f in files], extra)
    ours = _compose(
        compose_bin, PROJECT_PROFILES, [str(merged)], extra, "--project-directory", "."
    )
    assert original[0] == 0, original[2]
    assert ours[0] == 0, ours[2]
    assert json.loads(ours[1]) == json.loads(original[1])


AGREEMENT_SEEDS = 12  # of each kind; tests/compose_agreement.py runs thousands to find new cases


@pytest.mark.parametrize("kind", ["generated", "mutated"])
def test_projects_made_up_at_random_agree_with_compose(compose_bin: Path, kind: str) -> None:
    """A few projects from tests/compose_agreement.py: Compose and the merge accept the same
    ones, and read the same project from what they accept."""
    import compose_agreement

    make = getattr(compose_agreement, kind)
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(lambda seed: (seed, compose_agreement.answers(compose_bin, make(seed))),
                                range(AGREEMENT_SEEDS)))
    disagreements = [(seed, result) for seed, result in results if not result["agree"]]
    assert not disagreements, disagreements[0]

