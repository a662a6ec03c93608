#!/usr/bin/env python3
"""`compose-tunnel doctor` on a healthy tunnel stack, next to `docker compose ps` in the same run.

    flock /tmp/ct-engine.lock .venv/bin/python bench/doctor.py [--runs 10] [--editable]

The issue's target: the whole doctor under 5 s on a healthy stack. The stack is the engine
tests' (test profiles; their stand-in images, built here as their fixtures build them), in
tunnel mode through the tests' loopback tunnels: a TCP relay to Caddy's 443 and a UDP relay to
LiveKit's port, with dnsmasq answering both tunnel host names, so that every check runs and
passes (doctor exits 0, or the bench stops). Reported: median and min wall time, peak RSS, and
the ratio to `docker compose ps --all` on the same project (what `status` costs: one call to
the engine).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests"), str(ROOT)]

import compare  # noqa: E402 - bench/compare.py: measure, series, report, install
from dns_server import running_dnsmasq  # noqa: E402
from engine.debian_images import build_debian_images  # noqa: E402
from engine.images import build_images  # noqa: E402
from engine.relays import TcpRelay, UdpRelay  # noqa: E402

PROJECT = "ct-bench-doctor"
TCP_HOST, TCP_PUBLIC = "tcp-host.test", 19355
UDP_HOST, UDP_IP, UDP_PORT = "udp-host.test", "127.0.0.2", 19339
TARGET_SECONDS = 5.0


def test_images(env: dict[str, str]) -> None:
    """The engine tests' images, built as their fixtures build them (nothing when up to date):
    their tags are shared, so another checkout's test run may have built other stand-ins."""
    import shutil

    caddy = Path(sys.executable).with_name("caddy")
    build_images(env, caddy if caddy.exists() else Path(shutil.which("caddy") or "caddy"))
    build_debian_images(env)


def bench_doctor(runs: int) -> None:
    env = compare.clean_env()
    tool = compare.TOOL
    test_images(env)
    with tempfile.TemporaryDirectory() as tmp, \
            running_dnsmasq(a={TCP_HOST: "127.0.0.1", UDP_HOST: UDP_IP}) as dns, \
            TcpRelay(listen=("127.0.0.1", TCP_PUBLIC), target=("127.0.0.1", 443)), \
            UdpRelay(listen=(UDP_IP, UDP_PORT), target=("127.0.0.1", UDP_PORT)):
        work = Path(tmp)
        args = ["--cpu", "--livekit", "--garage", "--tunnels", f"{TCP_HOST}:{TCP_PUBLIC},{UDP_HOST}:{UDP_PORT}",
                "--dns-server", f"127.0.0.1:{dns.port}", "--profiles-dir",
                str(ROOT / "tests" / "engine" / "profiles"), "--project-name", PROJECT,
                "--publish-ip", "127.0.0.1", "--wait-timeout", "300"]
        workdir = work / ".compose-tunnel"
        try:
            seconds, _ = compare.measure([*tool, "up", *args], work, env)
            first = subprocess.run([*tool, "doctor"], cwd=work, env=env, capture_output=True, text=True)
            if first.returncode != 0:  # the bench times a healthy stack, where every check passes
                raise SystemExit(f"doctor does not pass on the bench's stack:\n{first.stdout}{first.stderr}")
            print(f"stack up in {seconds:.1f}s; doctor passes: {first.stdout.splitlines()[-1]}")
            print(f"doctor and ps, {runs} runs each (after one warm-up)")
            ps = ["docker", "compose", "--project-name", PROJECT, "-f", "applied/compose.yml",
                  "--env-file", "applied/.env", "ps", "--all"]
            reference = compare.series("docker compose ps --all (same project)", ps, workdir, env, runs)
            ours = compare.series("compose-tunnel doctor (every check, all pass)", [*tool, "doctor"],
                                  work, env, runs)
            json_run = compare.series("compose-tunnel doctor --json", [*tool, "doctor", "--json"],
                                      work, env, runs)
            compare.report([reference, ours, json_run], reference)
            verdict = "under" if ours["median_s"] < TARGET_SECONDS else "OVER"
            print(f"doctor median {ours['median_s']:.2f}s (min {ours['min_s']:.2f}s): {verdict} the "
                  f"{TARGET_SECONDS:g} s target; {ours['median_s'] / reference['median_s']:.1f}x docker compose ps")
        finally:
            subprocess.run([*tool, "down", "--volumes"], cwd=work, env=env, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--editable", action="store_true",
                        help="run this checkout as it is instead of an installed copy")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ct-bench-venv-") as venv:
        if not options.editable:
            compare.TOOL = compare.install(Path(venv))
        bench_doctor(options.runs)


if __name__ == "__main__":
    main()
