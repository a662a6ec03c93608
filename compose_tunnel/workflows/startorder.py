"""In which groups `up` starts the services of the flattened compose file: the bootstraps'
own first, those that need no bootstrap result alongside them, the rest once they ran."""

from __future__ import annotations

from dataclasses import dataclass

from ..renderers import COMPOSE, DOTENV, render_config
from ..state import Secrets
from ..workspace import Workspace
from .prepare import Prepared


@dataclass(frozen=True)
class StartOrder:
    """In which groups `up` starts the services of the flattened compose file."""

    first: list[str]  # before the first bootstrap: the first steps' own
    alongside: list[str]  # while the bootstraps run: what consumes no bootstrap result, nor waits for health
    services: list[str]  # every service of the file
    dependencies: dict[str, set[str]]  # what Compose starts (and waits for) with each
    # A service behind a Compose profile or scaled to zero: named on a command line, it would
    # start; the stack is then started whole, as Compose selects it.
    selective: bool = True

    def started_with(self, services: list[str], ready: set[str]) -> bool:
        """Whether these services may start without their dependencies (--no-deps): every one
        of them is ready, so Compose need not check their conditions again (half a second per
        level of dependencies, already-healthy ones included)."""
        return all(self.dependencies.get(name, set()) <= ready | set(services) for name in services)


def start_order(workspace: Workspace, prepared: Prepared, steps: list) -> StartOrder:
    """The services `up` starts before the first bootstrap runs (the first steps' own), and
    those it starts alongside the bootstraps: the ones consuming no bootstrap result (found by
    rendering with every result marked: the files and `.env` variables that change are the
    ones bootstraps feed) and waiting for no other service's health (see started_with_steps)."""
    from .. import envfile
    from ..bootstrap import dependencies_of, skipped_by_plain_up, started_first, started_with_steps
    from ..yamlio import load_compose_text

    owned = {name: f"bootstrap-result-{name}" for step in steps for name in step.owns}
    marked = render_config(prepared.plan, Secrets({**prepared.secrets.values, **owned}), workspace.read)
    fed = {name for name, content in marked.items() if prepared.files.get(name) != content}
    before, after = (envfile.values(files[DOTENV].text) if DOTENV in files else {}
                     for files in (prepared.files, marked))
    variables = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    model = load_compose_text(prepared.files[COMPOSE].text, COMPOSE)
    services = model.get("services") or {}
    alongside = started_with_steps(steps, model, str(workspace.root), fed, variables)
    return StartOrder(
        started_first(steps), alongside,
        list(services), {name: dependencies_of(service) for name, service in services.items()},
        selective=not any(map(skipped_by_plain_up, services.values())))
