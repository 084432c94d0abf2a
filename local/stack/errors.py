"""The one error the stack raises."""

from __future__ import annotations


class StackError(RuntimeError):
    """The stack could not be started or inspected; the message says what to do."""
