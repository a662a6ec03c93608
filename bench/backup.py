#!/usr/bin/env python3
"""`compose-tunnel backup` against the same copies made by hand, on a real engine.

    flock /tmp/ct-engine.lock .venv/bin/python bench/backup.py [--rows 400000] [--blob-mb 200] [--runs 3]

Starts a project on the test images (real Postgres; the Garage, server and Hatchet stand-ins),
fills the reflector database with --rows rows (its size is printed) and Garage's data and the
server's volumes with --blob-mb of random bytes, then times, in turns:
- by hand: `docker exec postgres pg_dump -Fc` of both databases, then `docker cp` of Garage's
  metadata and data, the server's data and Hatchet's config volumes, each to a file;
- `compose-tunnel backup` (the same dumps and copies, plus Garage's metadata snapshot, the
  manifest and the sha256 of every member, into one archive).
Goal: backup ≤ 1.2× by hand (median of --runs). The project is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "ct-test-bench-backup"
PROFILES = ROOT / "tests" / "engine" / "profiles"


def run(*args: str, cwd: Path | None = None, stdout=subprocess.DEVNULL) -> None:
    subprocess.run(list(args), cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, check=True)


def tool(*args: str, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    result = subprocess.run([sys.executable, "-m", "compose_tunnel", *args], cwd=cwd, env=env,
                            capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"compose-tunnel {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


def psql(sql: str, database: str = "reflector") -> str:
    return subprocess.run(["docker", "exec", f"{PROJECT}-postgres-1", "psql", "-X", "-U", "reflector",
                           "-d", database, "-tAc", sql], capture_output=True, text=True,
                          check=True).stdout.strip()


def fill(rows: int, blob_mb: int) -> None:
    psql("CREATE TABLE IF NOT EXISTS transcript_bench (id bigserial PRIMARY KEY, title text, body text); "
         f"INSERT INTO transcript_bench (title, body) SELECT 'meeting ' || n, md5(n::text) || "
         f"repeat(md5((n * 7)::text), 8) FROM generate_series(1, {rows}) AS n")
    for service, path in (("garage", "/var/lib/garage/data/ab/cd/abcd-bench"),
                          ("server", "/app/data/recordings/bench.webm")):
        run("docker", "exec", f"{PROJECT}-{service}-1", "sh", "-c",
            f"mkdir -p {os.path.dirname(path)} && head -c {blob_mb * (1 << 20)} /dev/urandom > {path}")


def by_hand(out: Path) -> None:
    for database in ("reflector", "hatchet"):
        with open(out / f"{database}.dump", "wb") as sink:
            run("docker", "exec", f"{PROJECT}-postgres-1", "pg_dump", "-U", "reflector", "-Fc", "-d",
                database, stdout=sink)
    for service, path, name in (("garage", "/var/lib/garage/meta", "garage_meta"),
                                ("garage", "/var/lib/garage/data", "garage_data"),
                                ("server", "/app/data", "server_data"), ("hatchet", "/config", "hatchet")):
        with open(out / f"{name}.tar", "wb") as sink:
            run("docker", "cp", f"{PROJECT}-{service}-1:{path}", "-", stdout=sink)


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--blob-mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ct-bench-backup-") as tmp:
        work = Path(tmp)
        try:
            tool("up", "--cpu", "--garage", "--lan-ip", "192.0.2.1", "--profiles-dir", str(PROFILES),
                 "--project-name", PROJECT, "--publish-ip", "127.0.0.1", "--wait-timeout", "180", cwd=work)
            fill(options.rows, options.blob_mb)
            size = psql("SELECT pg_size_pretty(pg_database_size('reflector'))")
            hatchet = psql("SELECT pg_size_pretty(pg_database_size('hatchet'))")
            hand, ours = [], []
            for turn in range(options.runs + 1):  # the first turn warms the caches, not counted
                out = work / "by-hand"
                out.mkdir(exist_ok=True)
                seconds_hand = timed(lambda: by_hand(out))
                hand_bytes = sum(p.stat().st_size for p in out.iterdir())
                run("rm", "-rf", str(out))
                archive = work / "backup.tar"
                seconds_ours = timed(lambda: tool("backup", "-o", str(archive), cwd=work))
                archive_bytes = archive.stat().st_size
                archive.unlink()
                if turn:
                    hand.append(seconds_hand)
                    ours.append(seconds_ours)
            print(f"database reflector: {size} ({options.rows} rows), hatchet: {hatchet}; "
                  f"Garage data and server data: {options.blob_mb} MiB each")
            print(f"by hand (pg_dump -Fc x2 + docker cp x4): median {statistics.median(hand):.2f}s "
                  f"({hand_bytes / 1e6:.0f} MB written)")
            print(f"compose-tunnel backup:                  median {statistics.median(ours):.2f}s "
                  f"({archive_bytes / 1e6:.0f} MB archive)")
            ratio = statistics.median(ours) / statistics.median(hand)
            print(f"ratio: {ratio:.2f}x (goal <= 1.2x), {options.runs} runs each, runs: "
                  f"by hand {', '.join(f'{s:.2f}' for s in hand)}; backup {', '.join(f'{s:.2f}' for s in ours)}")
        finally:
            subprocess.run([sys.executable, "-m", "compose_tunnel", "down", "--volumes"], cwd=work,
                           capture_output=True)


if __name__ == "__main__":
    main()
