"""The engine's exceptions: bad input (the user can fix it) and cancellation (the user asked)."""


class BadInput(ValueError):
    """Input the user can fix; the message says what was wrong and what is allowed."""


class Cancelled(Exception):
    """Raised from a progress callback to stop a run; no output is written."""
