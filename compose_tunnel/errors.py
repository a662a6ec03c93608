"""The errors a person can act on, each printed as one line with a hint.

A UserError (bad input, missing tool) exits 2; an EngineError (a fault of the running stack,
such as a bootstrap that could not finish) exits 1. Anything else is a bug.
"""

from __future__ import annotations


class Problem(Exception):
    """One line for a person: what went wrong, and a hint what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class UserError(Problem):
    """Something the user can fix: bad input, missing tool, unreachable service."""


class EngineError(Problem):
    """A fault of the running stack, not of the user's input."""


def last_line(text: str | None) -> str:
    """The last non-blank line of a tool's stderr: what a one-line error quotes."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""
