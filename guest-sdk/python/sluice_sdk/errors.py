"""Errors a handler raises, one class per kind of the WIT `error` variant.

The host acts on the kind: `InvalidInput` and `Fatal` are not retried, `Retryable`
may be, `ConnectionError` flags the connection named by its key. Any other exception
that escapes a handler becomes `fatal` with its type, message and traceback
(`MemoryError` excepted: it traps, so the host reports the memory limit).
"""

from __future__ import annotations


class SluiceError(Exception):
    """Base class of the errors the host understands; `kind` names the WIT case."""

    kind = "fatal"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def context(self, prefix: str) -> "SluiceError":
        """Prefixes the message (`listing repos: ...`) and keeps the kind."""
        self.message = f"{prefix}: {self.message}"
        self.args = (self.message,)
        return self


class InvalidInput(SluiceError):
    """This input (or configuration) cannot work: retrying it cannot succeed."""

    kind = "invalid-input"


class ConnectionError(SluiceError):  # noqa: A001 - the WIT name; import it qualified
    """Credentials are missing, expired or refused; `key` is the connection at fault."""

    kind = "connection"

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


class Retryable(SluiceError):
    """A transient failure (rate limit, 5xx, timeout): the host may retry."""

    kind = "retryable"


class Fatal(SluiceError):
    """Any other failure: do not retry."""

    kind = "fatal"
