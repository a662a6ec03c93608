"""Reflector's real frontend image, built from Reflector's source snapshot (reflector_source.py)
the way upstream's www/Dockerfile builds monadicalsas/reflector-frontend: `pnpm install`, `pnpm
build-production` (Next.js standalone output), a runner with public/, the standalone server and
.next/static in /app, user nextjs, `node server.js` on port 3000, health at /api/health.

    compose-tunnel-test/reflector-frontend-rootfs:<key>   the root filesystem, `docker import`ed
    compose-tunnel-test/reflector-frontend:1              FROM it: the runner stage's settings

No image registry is reachable, so the stages run in a Debian trixie root filesystem made here
(rootfs.py) instead of node:22-alpine. Its key is a sha256 over the snapshot's sha256, the recipe
files in reflector/frontend/, the package list, the pins and this module's recipe functions; an
image with that key is not built again. The deviations from upstream, each with its reason where
it is made (here and in reflector/frontend/*.sh): Debian's Node 20 and wget, pnpm from npm, three
lockfile pins the registry here lacks, the Poppins font from npm instead of Google Fonts.

    python -m tests.engine.reflector_frontend [--force]   builds it by hand (DOCKER_CONFIG as usual)
"""

from __future__ import annotations

import hashlib
import http.server
import inspect
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from .images import HASH_LABEL, Built, ImageError, _docker, _inspect, content_hash
from .reflector_source import COMMIT, Snapshot, reflector_snapshot
from .rootfs import (MIRROR, build_root_image, chroot_ready, debootstrap, in_chroot, put, say,
                     tail)

RECIPE = Path(__file__).parent / "reflector" / "frontend"
FRONTEND = "compose-tunnel-test/reflector-frontend:1"
ROOT_REPO = "compose-tunnel-test/reflector-frontend-rootfs"

SUITE = "trixie"
VARIANT = "minbase"
# nodejs and npm build it; node, wget (the HEALTHCHECK's; BusyBox has it in upstream's Alpine)
# and ca-certificates (Debian's node trusts the system's CAs, not a bundled list) stay.
PACKAGES = ("nodejs", "npm", "wget", "ca-certificates")
BUILD_ONLY_PACKAGES = ("npm",)
PNPM_VERSION = "10.33.2"  # see reflector/frontend/system.sh
IMPORT_CHANGES = ("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                  "ENV LANG=C.UTF-8")

# Deviation: the npm registry reachable here lacks three versions pnpm-lock.yaml pins, so these
# take the nearest version it has. Direct dependencies are pinned in package.json (exactly: a
# caret range would let pnpm pick the newest 3.x), the transitive rtcstats by a pnpm override.
PINS = {
    "@whereby.com/browser-sdk": "3.18.30",  # locked 3.18.21, which the registry lacks
    "react-uuid-hook": "0.0.4",  # locked 0.0.6, which the registry lacks (0.0.4 is all it has)
}
OVERRIDES = {
    # locked from a GitHub tarball (whereby/rtcstats, 5.4.1, via @whereby.com/media); GitHub is
    # not reachable here, npm's newest rtcstats is 5.2.0
    "rtcstats": "5.2.0",
}
# browser-sdk 3.18.30 pins @whereby.com/core 1.6.15 and @whereby.com/media 3.1.0 (3.18.21 had 1.6.6
# and 2.8.6): the only other packages the install may add to the lockfile.
RESOLVED_ANEW = frozenset({*PINS, *OVERRIDES, "@whereby.com/core", "@whereby.com/media"})

# Deviation: `next build` downloads app/layout.tsx's Poppins (200, 400, 600) from Google Fonts,
# which is not reachable here. next/font reads NEXT_FONT_GOOGLE_MOCKED_RESPONSES (a module that
# maps the stylesheet URL to its CSS) instead of fetching the stylesheet; Turbopack still
# downloads the CSS's font URLs, so the font files (npm's @fontsource/poppins, the same Google
# font) are served on 127.0.0.1 for the build (the chroot shares the host's network).
FONTSOURCE = "@fontsource/poppins@5.3.0"
FONT_FAMILY = "Poppins"
FONT_WEIGHTS = (200, 400, 600)
FONT_STYLESHEET = ("https://fonts.googleapis.com/css2?family=Poppins:wght@200;400;600"
                   "&display=swap")

DEVIATIONS = ("debian trixie node 20.19 + wget; pnpm 10.33.2 from npm; "
              "@whereby.com/browser-sdk 3.18.30, react-uuid-hook 0.0.4, rtcstats 5.2.0 (npm); "
              "Poppins from @fontsource/poppins 5.3.0")
LABELS = {
    "compose-tunnel-test.reflector-commit": COMMIT,
    "compose-tunnel-test.deviations": DEVIATIONS,
    "org.opencontainers.image.title": "Reflector frontend (test build of "
                                      "monadicalsas/reflector-frontend)",
    "org.opencontainers.image.source": "https://github.com/GreyhavenHQ/reflector",
    "org.opencontainers.image.revision": COMMIT,
}

IN_CHROOT = Path("/tmp/ct-frontend")  # scripts, fonts, pnpm store, the build tree at the end
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
BUILD_SCRIPTS = ("system.sh", "deps.sh", "fonts.sh", "build.sh", "runner.sh")
PLACES = {"policy-rc.d": ("usr/sbin/policy-rc.d", 0o755),
          "apt.conf": ("etc/apt/apt.conf.d/90ct-test", 0o644),
          "dpkg-excludes": ("etc/dpkg/dpkg.cfg.d/90ct-test-excludes", 0o644)}


def _say(message: str) -> None:
    say("reflector frontend", message)


# ---- the steps ---------------------------------------------------------------------------

def _build_env() -> dict[str, str]:
    """npm's and pnpm's settings in the chroot. The host's CA bundle is handed to them for the
    build only (a TLS-intercepting egress here has its own CA); it never enters the image."""
    env = {"npm_config_update_notifier": "false", "npm_config_fund": "false",
           "npm_config_audit": "false", "NEXT_TELEMETRY_DISABLED": "1"}
    if HOST_CA.is_file():
        env |= {"npm_config_cafile": f"{IN_CHROOT}/host-ca.crt",
                "NODE_EXTRA_CA_CERTS": f"{IN_CHROOT}/host-ca.crt"}
    return env


def _dockerignore(www: Path):
    """A predicate over paths relative to www/: true for what www/.dockerignore keeps out of
    upstream's `COPY . .` (a pattern matches the path or one of its parents)."""
    patterns = [line.strip() for line in (www / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    if any(pattern.startswith("!") for pattern in patterns):
        raise ImageError("www/.dockerignore has exceptions (!), which this recipe does not read")

    def regex(pattern: str) -> re.Pattern[str]:
        parts = re.split(r"(\*\*|\*|\?)", pattern.strip("/"))
        table = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
        return re.compile("".join(table.get(part, re.escape(part)) for part in parts))

    compiled = [regex(pattern) for pattern in patterns]

    def ignored(relative: str) -> bool:
        pieces = relative.split("/")
        prefixes = ["/".join(pieces[:count]) for count in range(1, len(pieces) + 1)]
        return any(rx.fullmatch(prefix) for rx in compiled for prefix in prefixes)
    return ignored


def _copy_www(www: Path, app: Path, skip: frozenset[str] = frozenset()) -> int:
    """upstream's `COPY . .` of www/ into /app: what .dockerignore lets through, less `skip`."""
    ignored = _dockerignore(www)
    count = 0
    for directory, subdirs, files in os.walk(www):
        base = Path(directory)
        relative_dir = base.relative_to(www).as_posix()
        prefix = "" if relative_dir == "." else relative_dir + "/"
        subdirs[:] = [name for name in subdirs if not ignored(prefix + name)]
        (app / relative_dir).mkdir(parents=True, exist_ok=True)
        for name in files:
            relative = prefix + name
            if ignored(relative) or relative in skip:
                continue
            if (base / name).is_symlink():
                (app / relative).symlink_to(os.readlink(base / name))
            else:
                shutil.copy2(base / name, app / relative)
            count += 1
    return count


def _pin(package_json: Path) -> None:
    """The PINS in dependencies, the OVERRIDES among pnpm.overrides (deviation: see PINS)."""
    manifest = json.loads(package_json.read_text())
    for name, version in PINS.items():
        if name not in manifest.get("dependencies", {}):
            raise ImageError(f"www/package.json has no dependency {name} to pin")
        manifest["dependencies"][name] = version
    manifest.setdefault("pnpm", {}).setdefault("overrides", {}).update(OVERRIDES)
    package_json.write_text(json.dumps(manifest, indent=2) + "\n")


def _locked_packages(lockfile: Path) -> set[str]:
    import yaml  # only a build reads lockfiles

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return set((yaml.load(lockfile.read_text(), Loader=loader) or {}).get("packages") or {})


def _package_name(key: str) -> str:
    return key[:key.index("@", 1)]


def _check_lockfile(locked: Path, installed: Path) -> str:
    """Every package of the snapshot's lockfile that the install still needs keeps its locked
    version: what the install added is only RESOLVED_ANEW. Returns a one-line summary."""
    before, after = _locked_packages(locked), _locked_packages(installed)
    added, dropped = sorted(after - before), sorted(before - after)
    unexpected = [key for key in added if _package_name(key) not in RESOLVED_ANEW]
    if unexpected:
        raise ImageError("pnpm resolved packages beyond the three pins, so the lockfile's versions "
                         f"did not hold: {', '.join(unexpected)} (RESOLVED_ANEW in "
                         f"{Path(__file__).name} lists what may move)")
    return (f"lockfile: {len(before & after)} of {len(before)} locked packages kept; "
            f"new: {', '.join(added) or 'none'}; gone: "
            f"{', '.join(key if len(key) < 60 else key[:57] + '...' for key in dropped) or 'none'}")


def _font_css(fonts: Path, port: int) -> str:
    """The stylesheet Google Fonts serves for FONT_STYLESHEET, made from @fontsource/poppins's
    per-weight CSS: per weight and subset one @font-face, after a `/* subset */` comment (next/font
    preloads the subsets it is asked for by those comments), its woff2 on 127.0.0.1:port."""
    blocks = []
    for weight in FONT_WEIGHTS:
        text = (fonts / f"{weight}.css").read_text()
        faces = re.findall(r"/\*\s*poppins-([a-z0-9-]+?)-(\d+)-normal\s*\*/\s*"
                           r"@font-face\s*\{(.*?)\}", text, re.DOTALL)
        subsets = []
        for subset, face_weight, body in faces:
            ranges = re.search(r"unicode-range:\s*([^;]+);", body)
            font = fonts / "files" / f"poppins-{subset}-{face_weight}-normal.woff2"
            if int(face_weight) != weight or ranges is None or not font.is_file():
                raise ImageError(f"{FONTSOURCE}'s {weight}.css is not as expected ({subset})")
            subsets.append(subset)
            blocks.append(f"/* {subset} */\n@font-face {{\n  font-family: '{FONT_FAMILY}';\n"
                          f"  font-style: normal;\n  font-weight: {weight};\n"
                          f"  font-display: swap;\n"
                          f"  src: url(http://127.0.0.1:{port}/{font.name}) format('woff2');\n"
                          f"  unicode-range: {ranges.group(1).strip()};\n}}\n")
        if "latin" not in subsets:
            raise ImageError(f"{FONTSOURCE} has no latin {FONT_FAMILY} {weight}")
    return "".join(blocks)


@contextmanager
def _font_server(directory: Path) -> Iterator[tuple[int, list[str]]]:
    """An HTTP server on 127.0.0.1 (a free port) for the files in `directory`, for as long as
    the block runs; yields its port and the list of paths it has served."""
    served: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def do_GET(self):
            served.append(self.path)
            super().do_GET()

        def log_message(self, format, *args):  # the build log has the summary
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="ct-font-server", daemon=True)
    thread.start()
    try:
        yield server.server_address[1], served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _make_rootfs(snapshot: Snapshot, rootfs: Path, log: Path) -> dict[str, float]:
    """debootstrap; then in the chroot: node, npm and pnpm; the dependencies; the fonts; the
    build; the runner's layout with the build tools gone. Seconds per step."""
    seconds: dict[str, float] = {}
    env = _build_env()
    inside = rootfs / IN_CHROOT.relative_to("/")

    def step(name: str, args: list[str], timeout: float, extra: dict[str, str] | None = None):
        _say(f"{name} ...")
        started = time.monotonic()
        in_chroot(rootfs, args, f"{name} in the chroot", timeout, log, {**env, **(extra or {})})
        seconds[name] = time.monotonic() - started

    started = time.monotonic()
    _say(f"debootstrap {VARIANT} {SUITE} ...")
    debootstrap(rootfs, SUITE, log, VARIANT)
    seconds["debootstrap"] = time.monotonic() - started
    for name, (target, mode) in PLACES.items():
        put(rootfs, target, RECIPE / name, mode)
    for name in BUILD_SCRIPTS:
        put(rootfs, f"{IN_CHROOT}/{name}", RECIPE / name, 0o755)
    if HOST_CA.is_file():
        put(rootfs, f"{IN_CHROOT}/host-ca.crt", HOST_CA, 0o644)
    app = rootfs / "app"
    with chroot_ready(rootfs):
        step("system", ["/bin/sh", f"{IN_CHROOT}/system.sh", PNPM_VERSION, *PACKAGES], 1200)

        # upstream's deps stage: package.json and pnpm-lock.yaml alone in /app
        app.mkdir()
        for name in ("package.json", "pnpm-lock.yaml"):
            shutil.copy2(snapshot.www / name, app / name)
        _pin(app / "package.json")
        step("deps", ["/bin/sh", f"{IN_CHROOT}/deps.sh", f"{IN_CHROOT}/pnpm-store"], 1800)
        summary = _check_lockfile(snapshot.www / "pnpm-lock.yaml", app / "pnpm-lock.yaml")
        _say(summary)
        with log.open("a") as handle:
            handle.write(summary + "\n")

        # upstream's builder stage: `COPY . .` over the installed node_modules; the pinned
        # package.json and the lockfile the install wrote stay (what was installed)
        copied = _copy_www(snapshot.www, app, frozenset({"package.json", "pnpm-lock.yaml"}))
        step("fonts", ["/bin/sh", f"{IN_CHROOT}/fonts.sh", FONTSOURCE, f"{IN_CHROOT}/fonts"], 600)
        fonts = inside / "fonts" / "package"
        with _font_server(fonts / "files") as (port, served):
            mock = inside / "mocked-responses.js"
            mock.write_text("module.exports = "
                            + json.dumps({FONT_STYLESHEET: _font_css(fonts, port)}, indent=2)
                            + ";\n")
            step("build", ["/bin/sh", f"{IN_CHROOT}/build.sh"], 1800,
                 {"NEXT_FONT_GOOGLE_MOCKED_RESPONSES": f"{IN_CHROOT}/mocked-responses.js"})
        wanted = set(re.findall(rf"http://127\.0\.0\.1:{port}(/[^)]+)", mock.read_text()))
        if not wanted <= set(served):
            raise ImageError("next build did not fetch the Poppins files served for it: "
                             f"{', '.join(sorted(wanted - set(served)))}")
        _say(f"build: {copied} files of www/, {len(set(served))} font files served")

        step("runner", ["/bin/sh", f"{IN_CHROOT}/runner.sh", f"{IN_CHROOT}/build",
                        *BUILD_ONLY_PACKAGES], 1200)
    shutil.rmtree(inside)
    return seconds


# ---- the images --------------------------------------------------------------------------

def _recipe_files() -> list[Path]:
    """The files the root filesystem is made with (the Dockerfile is the runner's)."""
    return sorted(path for path in RECIPE.rglob("*")
                  if path.is_file() and path.name != "Dockerfile")


def root_key(snapshot: Snapshot) -> str:
    """sha256 over everything the root filesystem is made of (see the module docstring)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({
        "snapshot": snapshot.sha256, "suite": SUITE, "mirror": MIRROR, "variant": VARIANT,
        "packages": PACKAGES, "build_only": BUILD_ONLY_PACKAGES, "pnpm": PNPM_VERSION,
        "pins": PINS, "overrides": OVERRIDES, "resolved_anew": sorted(RESOLVED_ANEW),
        "fonts": [FONTSOURCE, FONT_FAMILY, FONT_WEIGHTS, FONT_STYLESHEET],
        "changes": IMPORT_CHANGES,
        "recipe": [inspect.getsource(function) for function in (
            _make_rootfs, _build_env, _dockerignore, _copy_www, _pin, _check_lockfile, _font_css,
            _font_server)],
    }, sort_keys=True).encode())
    for path in _recipe_files():
        digest.update(f"\0{path.relative_to(RECIPE).as_posix()}\0"
                      f"{path.stat().st_mode & 0o777:o}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_root(env: dict[str, str], force: bool = False) -> Built:
    """compose-tunnel-test/reflector-frontend-rootfs:<key>; skipped when that image exists."""
    snapshot = reflector_snapshot()
    key = root_key(snapshot)
    tag = f"{ROOT_REPO}:{key}"
    built = build_root_image(tag, key, partial(_make_rootfs, snapshot), IMPORT_CHANGES,
                             f"Reflector {COMMIT} www/ built on debootstrap {VARIANT} {SUITE}",
                             env, force, "reflector frontend")
    if built.built:
        listed = _docker(["image", "ls", ROOT_REPO, "--format", "{{.Repository}}:{{.Tag}}"],
                         env, 60)
        for other in listed.stdout.split():
            if other != tag:
                _docker(["image", "rm", other], env, 60)  # untagged; layers go with their users
    return built


def _build_runner(base: str, env: dict[str, str], force: bool) -> Built:
    """docker build of reflector/frontend/Dockerfile FROM `base`, skipped when the image's
    content-hash label matches the Dockerfile, the base and the labels."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ct-image-reflector-frontend-") as tmp:
        context = Path(tmp)
        shutil.copyfile(RECIPE / "Dockerfile", context / "Dockerfile")
        digest = hashlib.sha256(f"{content_hash(context)}\0{base}\0"
                                f"{json.dumps(LABELS, sort_keys=True)}".encode()).hexdigest()[:32]
        existing = _inspect(FRONTEND, env)
        if existing and existing[1] == digest and not force:
            return Built(FRONTEND, digest, False, time.monotonic() - started, existing[2])
        labels = [arg for name, value in {HASH_LABEL: digest, **LABELS}.items()
                  for arg in ("--label", f"{name}={value}")]
        result = _docker(["build", "--quiet", "--pull=false", "--build-arg", f"BASE={base}",
                          *labels, "--tag", FRONTEND, str(context)],
                         {**env, "DOCKER_BUILDKIT": "0"}, 600)  # the legacy builder: no buildx
        if result.returncode != 0:
            raise ImageError(f"docker build {FRONTEND} failed:\n"
                             f"{tail(result.stderr or result.stdout)}")
    after = _inspect(FRONTEND, env)
    if existing and after and existing[0] != after[0]:
        _docker(["image", "rm", existing[0]], env, 60)  # the replaced build; kept if still in use
    return Built(FRONTEND, digest, True, time.monotonic() - started, after[2] if after else 0)


def build_frontend_image(env: dict[str, str], force: bool = False) -> Built:
    """compose-tunnel-test/reflector-frontend:1, built from the snapshot unless an image of the
    same inputs exists (then in about a second). ImageError with the log's tail on failure."""
    started = time.monotonic()
    root = build_root(env, force)
    runner = _build_runner(root.tag, env, force)
    return Built(FRONTEND, runner.content_hash, root.built or runner.built,
                 time.monotonic() - started, runner.size_bytes)


if __name__ == "__main__":
    try:
        image = build_frontend_image(dict(os.environ), force="--force" in sys.argv[1:])
    except ImageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    state = "built" if image.built else "up to date"
    print(f"{image.tag:40} {state:10} {image.size_bytes / 1e6:7.1f} MB  {image.seconds:6.1f}s")
