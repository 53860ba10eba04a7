"""The one error type the stack raises: a cause and the fix, printable on one line."""

from __future__ import annotations


class StackError(RuntimeError):
    """A local server could not be installed, started or stopped.

    ``cause`` says what went wrong, ``fix`` what the operator can do about it;
    ``str()`` joins both on one line, which is what the CLI prints.
    """

    def __init__(self, cause: str, fix: str = "") -> None:
        self.cause = cause
        self.fix = fix
        super().__init__(f"{cause} — {fix}" if fix else cause)
