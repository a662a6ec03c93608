"""Bootstraps: one-time set-up inside running services, done before the services that need it.

Garage needs a layout, a bucket and a key; Hatchet needs its database and a client token.
Each is a `Step` of one shape: the services it needs running, and a function that looks at
them, does only what is missing, and stores what it produced in the secrets. `up` starts each
step's services, runs the steps in order, renders the results into the env files, and only then
starts the whole stack, so every consumer starts once, with the results in its environment.

Steps talk to containers through an `Exec` callable (the product plugs `docker compose exec`
into it, the unit tests a recorder), so this module and the steps import nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .errors import EngineError

if TYPE_CHECKING:
    from .plan import Plan
    from .state import Secrets


@dataclass(frozen=True)
class CommandResult:
    """What one command run in a container gave back."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


Runner = Callable[[list[str]], CommandResult]  # argv -> result, in one known container
# (service, argv) -> result; with on_output=callable, the output's lines as they come as well.
Exec = Callable[..., CommandResult]


class BootstrapError(EngineError):
    """A step could not finish. The message is one line naming what failed, never a secret."""


@dataclass(frozen=True)
class Step:
    """One bootstrap: start `services`, wait until they are ready, then `run`."""

    name: str
    services: tuple[str, ...]
    run: Callable[[Exec, "Secrets"], list[str]]  # what it did; empty when nothing was missing
    describe: str  # for --dry-run: what it would do
    owns: tuple[str, ...] = ()  # the secrets it produces: they live in the volumes it set up
    # Whether the stack waits for it. A step nothing consumes at start (the LLM's model, which
    # takes minutes) runs once the stack is up, so the app is usable meanwhile.
    before_stack: bool = True
    # Whether its services may only start after the steps before it ran (Hatchet needs its
    # database). The others' services all start at once, at the beginning.
    after_previous: bool = False


def steps_for(plan: "Plan", say: Callable[[str], None] | None = None) -> list[Step]:
    """The bootstraps a plan needs, in the order they run (`say` shows long ones' progress)."""
    from . import garage, hatchet, ollama, reflector

    steps = []
    if plan.has("garage"):
        steps.append(garage.STEP)
    steps.extend(hatchet.STEPS)  # the workflow engine is part of the base stack
    service = reflector.ollama_service(plan)
    if service:
        model = reflector.llm_model(plan)
        assert model
        steps.append(ollama.step(service, model, say))
    return steps


def started_first(steps: list[Step]) -> list[str]:
    """The services `up` starts at once, before any step runs: those of the steps that wait
    for the stack and need nothing from an earlier step."""
    return list(dict.fromkeys(service for step in steps if step.before_stack and not step.after_previous
                              for service in step.services))


def owned_secrets() -> tuple[str, ...]:
    """Every secret a bootstrap produces (forgotten when the volumes holding their state go)."""
    from . import garage, hatchet

    return tuple(name for step in (garage.STEP, *hatchet.STEPS) for name in step.owns)
