"""The bootstrap steps a plan needs, in the order `up` runs them: the one list a new step joins.

`bootstrap` is the shape of a step; each step's module (garage, hatchet, ollama) fills it and
imports that shape. The list sits here, above both, so the shape never imports what fills it:
a new step touches this list and its own module only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .. import garage, hatchet, ollama, reflector
from ..bootstrap import Step

if TYPE_CHECKING:
    from ..plan import Plan


def steps_for(plan: "Plan", say: Callable[[str], None] | None = None) -> list[Step]:
    """The bootstraps a plan needs, in the order they run (`say` shows long ones' progress)."""
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


def owned_secrets() -> tuple[str, ...]:
    """Every secret a bootstrap produces (forgotten when the volumes holding their state go)."""
    return tuple(name for step in (garage.STEP, *hatchet.STEPS) for name in step.owns)
