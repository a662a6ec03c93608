"""The one error type a user can cause.

The CLI prints it as a single line plus a hint and exits 2; everything else is a bug.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: bad input, missing tool, unreachable service."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


def last_line(text: str | None) -> str:
    """The last non-blank line of a tool's stderr: what a one-line error quotes."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""
