"""The local LLM's bootstrap: its model, pulled once.

Ollama starts with no model; Reflector's summaries and topics need the one LLM_MODEL names.
`ollama list` says whether it is there; `ollama pull` fetches it (gigabytes: its progress is
shown as it comes). A model already pulled costs one `ollama list` on later runs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable

from .bootstrap import BootstrapError, CommandResult, Exec, Step
from .errors import last_line

if TYPE_CHECKING:
    from .state import Secrets

Progress = Callable[[str], None]
_PERCENT = re.compile(r"\b(\d{1,3})%")


def listed_models(out: str) -> set[str]:
    """Model names from `ollama list` (a NAME column under a header)."""
    names = set()
    for line in out.splitlines()[1:]:
        if line.strip():
            name = line.split()[0]
            names.add(name)
            if name.endswith(":latest"):
                names.add(name.removesuffix(":latest"))
    return names


def _reason(result: CommandResult) -> str:
    return last_line(result.stderr) or last_line(result.stdout) or f"exit code {result.exit_code}"


def ensure_model(exec_: Exec, service: str, model: str, progress: Progress | None = None) -> list[str]:
    listed = exec_(service, ["ollama", "list"])
    if not listed.ok:
        raise BootstrapError(f"ollama list failed: {_reason(listed)}",
                             f"see `compose-tunnel logs {service}`")
    if model in listed_models(listed.stdout):
        return []
    if progress:
        progress(f"pulling {model}: several GB, this takes a while")
    pulled = exec_(service, ["ollama", "pull", model], on_output=progress) if progress else \
        exec_(service, ["ollama", "pull", model])
    if not pulled.ok:
        raise BootstrapError(f"ollama pull {model} failed: {_reason(pulled)}",
                             "check the model name (ollama.com/library) and this machine's network; "
                             "`compose-tunnel up` tries again")
    return [f"model {model} pulled"]


def step(service: str, model: str, say: Progress | None = None) -> Step:
    def run(exec_: Exec, secrets: "Secrets") -> list[str]:
        return ensure_model(exec_, service, model, say)

    return Step(
        name="ollama model",
        services=(service,),
        run=run,
        describe=f"pull the LLM {model} into {service} unless it is there (once; several GB)",
        before_stack=False,
    )
