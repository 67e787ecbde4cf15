"""Errors a user can cause and fix."""

from __future__ import annotations


class UserError(Exception):
    """Bad input, config, data or environment: the CLI prints the message on one line, exits 2.

    The message says what is wrong, where (file and line when there is one) and what to do.
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message if hint is None else f"{message} ({hint})")


def at(path: object, line: int | None = None) -> str:
    """Format a location for error messages: ``file.jsonl:12``."""
    return f"{path}:{line}" if line is not None else str(path)
