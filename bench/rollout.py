#!/usr/bin/env python3
"""Failed requests and the slowest request while the app's containers are replaced, under a
browser's steady load through the TCP tunnel (tests/engine/load.py: /health, /v1/..., /).

    .venv/bin/python bench/rollout.py             # the stand-in images (quick)
    .venv/bin/python bench/rollout.py --real-app  # Reflector's own server, workers and web

Four ways to take a new release, one after the other on one stack (its images under the
bench's own tags, a new release a `docker build` FROM them with another label, tagged over):

- before: today's `rebuild` (down, build, up) as the commit --before (default: the one this
  work started from) does it, run from a `git archive` of it;
- `docker compose up -d` with the new image: Compose recreates in place;
- `compose-tunnel upgrade` with the new image;
- `compose-tunnel rebuild` with changed build contexts.

Needs the test images (a test run builds them) and the engine to itself: run it under
`flock /tmp/ct-engine.lock`. Loopback only; the load is bounded (MAX_REQUESTS) and stops itself.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from engine.load import Load  # noqa: E402
from engine.rollouts import app_overlay, build, docker, stack_behind_tunnel  # noqa: E402

PROJECT = "ct-bench-rollout"
OWN = "ct-bench-rollout"
TCP_HOST, TCP_PUBLIC = "bench.tunnel.test", 19067
BEFORE = "111eab1"
MAX_REQUESTS = 60_000
TEST_PROFILES = ROOT / "tests" / "engine" / "profiles"
REAL_APP_PROFILES = ROOT / "tests" / "engine" / "profiles-real-app"
IMAGES = {False: ("compose-tunnel-test/standin:1", "compose-tunnel-test/standin:1"),
          True: ("compose-tunnel-test/reflector-backend-no-ml:1", "compose-tunnel-test/reflector-frontend:1")}
PATHS = {False: ["/health", "/v1/meetings", "/"], True: ["/health", "/v1/transcripts", "/"]}


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}


def run(command: list[str], cwd: Path, extra_env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env={**env(), **(extra_env or {})}, capture_output=True,
                          text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def release(tag: str, base: str, label: str, directory: Path) -> None:
    """A new image under `tag`: FROM `base` with one more label."""
    build(tag, directory, f"FROM {base}\nLABEL ct-bench-rollout.release={label}\n")


def old_code(revision: str, into: Path) -> Path:
    """The package as `revision` had it (git archive), to run today's rebuild."""
    archive = subprocess.run(["git", "archive", revision, "compose_tunnel", "profiles"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def measure(name: str, command: list[str], cwd: Path, paths: list[str],
            extra_env: dict[str, str] | None = None) -> dict:
    with Load(TCP_PUBLIC, sni=TCP_HOST, host=f"{TCP_HOST}:{TCP_PUBLIC}", paths=paths,
              max_requests=MAX_REQUESTS, workers=2) as load:
        began = time.monotonic()
        done = run(command, cwd, extra_env, check=False)
        took = time.monotonic() - began
        time.sleep(2)
    if done.returncode != 0:
        raise SystemExit(f"{name}: {' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    report = load.report()
    print(f"  {name}: {report}; took {took:.1f}s", flush=True)
    return {"name": name, "requests": report.requests, "failed": len(report.failed),
            "slowest": report.slowest.seconds if report.slowest else 0.0, "took": took}


def bench(real_app: bool, before: str) -> list[dict]:
    backend, frontend = IMAGES[real_app]
    paths = PATHS[real_app]
    tool = [sys.executable, "-m", "compose_tunnel"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ct-bench-rollout-") as tmp:
        work = Path(tmp)
        profiles = app_overlay(work, f"{OWN}/backend:current", f"{OWN}/web:current")
        for name, base in (("server-build", backend), ("web-build", frontend)):
            (work / name / "Dockerfile").write_text(f"FROM {base}\n")  # today's rebuild builds them
        docker("tag", backend, f"{OWN}/backend:current")
        docker("tag", frontend, f"{OWN}/web:current")
        dirs = [TEST_PROFILES] + ([REAL_APP_PROFILES] if real_app else []) + [profiles]
        with stack_behind_tunnel(work, project=PROJECT, own=OWN, public=f"{TCP_HOST}:{TCP_PUBLIC}",
                                 profiles=dirs, wait="600", timeout=1800):
            # before: today's rebuild, from the code as it was
            old = old_code(before, work / "before")
            rows.append(measure(f"before: rebuild as of {before} (down, build, up)",
                                [sys.executable, "-m", "compose_tunnel", "rebuild", "--no-pull",
                                 "--wait-timeout", "600"], work, paths, {"PYTHONPATH": str(old)}))
            run([*tool, "up"], work)  # this code's files again (its Caddyfile), not measured
            # docker compose up -d with a new image: recreated in place
            release(f"{OWN}/backend:current", backend, "compose", work / "r1")
            release(f"{OWN}/web:current", frontend, "compose", work / "r2")
            rows.append(measure("docker compose up -d, new images (recreate in place)",
                                ["docker", "compose", "--project-name", PROJECT, "--file", "compose.yml",
                                 "--env-file", ".env", "up", "--detach", "--wait"],
                                work / ".compose-tunnel", paths))
            release(f"{OWN}/backend:current", backend, "upgrade", work / "r3")
            release(f"{OWN}/web:current", frontend, "upgrade", work / "r4")
            rows.append(measure("compose-tunnel upgrade, new images", [*tool, "upgrade", "--wait-timeout", "600"],
                                work, paths))
            (work / "server-build" / "Dockerfile").write_text(f"FROM {backend}\nLABEL ct-bench-rollout.built=1\n")
            (work / "web-build" / "Dockerfile").write_text(f"FROM {frontend}\nLABEL ct-bench-rollout.built=1\n")
            rows.append(measure("compose-tunnel rebuild, changed build contexts",
                                [*tool, "rebuild", "--wait-timeout", "600"], work, paths))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real-app", action="store_true", help="Reflector's own images, not the stand-ins")
    parser.add_argument("--before", default=BEFORE, help="the commit whose rebuild is the before figure")
    options = parser.parse_args()
    images = "Reflector's own server, workers and web" if options.real_app else "stand-in images"
    print(f"replacing the app under load ({images}): /health, /v1/..., / through the TCP tunnel", flush=True)
    rows = bench(options.real_app, options.before)
    print(f"\n| {'':56} | requests | failed | slowest | took |")
    print(f"|{'-' * 58}|---------:|-------:|--------:|-----:|")
    for row in rows:
        print(f"| {row['name']:56} | {row['requests']:8} | {row['failed']:6} | {row['slowest']:6.2f}s "
              f"| {row['took']:4.0f}s |")


if __name__ == "__main__":
    main()
