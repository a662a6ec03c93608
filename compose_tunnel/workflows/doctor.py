"""`doctor`: every check of `checks` on the install `up` last applied, side by side, each in
one line; and the cheap ones, which `watch` runs every interval.

The engine is asked first: when Docker does not answer, the checks that need it are not run
(each says so) and the network checks still are.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .. import appchecks, checks, enginechecks, envfile, state, tunnelchecks
from ..checks import FAIL, OK, SKIP, WARN, Install, Result
from ..dockercli import DockerCli
from ..settings import Settings
from ..workspace import Workspace
from .stacks import APPLIED_COMPOSE, APPLIED_DOTENV, last_applied

# (check, whether it needs the engine, whether `watch` runs it every interval)
CHECKS: tuple[tuple[checks.Check, str, bool, bool], ...] = (
    (enginechecks.check_disk, "disk", False, True),
    (enginechecks.check_configuration, "configuration", True, False),
    (enginechecks.check_services, "services", True, True),
    (tunnelchecks.check_udp_address, "udp address", False, False),  # watch follows it itself
    (tunnelchecks.check_tcp_path, "tcp path", False, False),
    (tunnelchecks.check_udp_path, "udp path", False, False),
    (appchecks.check_app_health, "app health", False, True),
    (appchecks.check_hatchet_token, "hatchet token", True, False),
    (appchecks.check_garage_key, "garage key", True, False),
    (appchecks.check_caddy_ca, "caddy CA", True, False),
)
MARKS = {OK: "✓", WARN: "!", FAIL: "✗", SKIP: "-"}


@dataclass
class Report:
    results: list[Result]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(result.status != FAIL for result in self.results)

    def summary(self) -> str:
        counted = [r for r in self.results if r.status != SKIP]
        failed = sum(r.status == FAIL for r in counted)
        warned = sum(r.status == WARN for r in counted)
        text = f"{len(counted) - failed} of {len(counted)} checks passed"
        text += f", {failed} failed" if failed else ""
        text += f", {warned} with a warning" if warned else ""
        return text + f" ({self.seconds:.1f} s)"

    def as_dict(self) -> dict:
        return {"ok": self.ok, "seconds": round(self.seconds, 3),
                "checks": [{"name": r.name, "status": r.status, "message": r.message, "hint": r.hint,
                            "details": list(r.details)} for r in self.results]}


def line(result: Result) -> str:
    """A result as doctor prints it: mark, name, what was found, and the fix."""
    text = f"{MARKS[result.status]} {result.name:<14} {result.message}"
    return text + (f" (fix: {result.hint})" if result.hint and result.status in (FAIL, WARN) else "")


def load_install(workspace: Workspace) -> Install:
    """What the checks need to know of the install `up` last applied (UserError: none)."""
    applied = last_applied(workspace, swarm=("doctor checks a stack on docker compose; this one runs on a swarm",
                                             "`compose-tunnel status` shows its services"))
    from ..renderers import LIVEKIT

    settings = state.load_settings(workspace) or Settings()
    livekit = None
    text = workspace.read(LIVEKIT)
    if text and "livekit" in applied.profiles:
        import yaml

        try:
            livekit = yaml.safe_load(text)
        except yaml.YAMLError:
            livekit = None
    docker = DockerCli(applied.project_name, workspace.root, workspace.path(APPLIED_COMPOSE),
                       workspace.path(APPLIED_DOTENV))
    return Install(workspace, settings, applied, state.load_secrets(workspace), docker,
                   envfile.values(workspace.read(APPLIED_DOTENV)), livekit if isinstance(livekit, dict) else None)


def diagnose(install: Install, *, cheap_only: bool = False) -> Report:
    """Every check (or the cheap ones), the engine's first; in the order of CHECKS."""
    began = time.monotonic()
    docker = checks.run_checked(enginechecks.check_docker, install, "docker")
    results = [docker]
    chosen = [(check, name, needs) for check, name, needs, cheap in CHECKS if cheap or not cheap_only]
    runnable = [(check, name) for check, name, needs in chosen if not (needs and docker.status == FAIL)]
    with ThreadPoolExecutor(max_workers=len(runnable) or 1) as pool:
        done = dict(zip([name for _, name in runnable],
                        pool.map(lambda item: checks.run_checked(item[0], install, item[1]), runnable)))
    for _check, name, _needs in chosen:
        results.append(done.get(name) or Result(name, FAIL, "not checked: Docker does not answer",
                                                "fix the docker check first"))
    return Report(results, time.monotonic() - began)


def doctor(workspace: Workspace, *, cheap_only: bool = False) -> Report:
    return diagnose(load_install(workspace), cheap_only=cheap_only)
