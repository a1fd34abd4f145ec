"""Structured logging into the execution's log (`sluice:flow/log`).

`log.info("created ticket %s", 42, fields={"id": 42})`: %-style arguments like the
`logging` module, optional structured `fields` (a JSON object). Lines over the host's
limit are truncated; too much logging ends the execution with `log-limit`.
`print()` also reaches the log (stdout is captured), without a level.
"""

from __future__ import annotations

import json

from . import _wit


def _write(level: str, message: str, args, fields) -> None:
    if args:
        message = message % args
    log = _wit.imports("log")
    encoded = None if fields is None else json.dumps(fields, separators=(",", ":"))
    log.write(getattr(log.Level, level.upper()), str(message), encoded)


def trace(message: str, *args, fields=None) -> None:
    _write("trace", message, args, fields)


def debug(message: str, *args, fields=None) -> None:
    _write("debug", message, args, fields)


def info(message: str, *args, fields=None) -> None:
    _write("info", message, args, fields)


def warn(message: str, *args, fields=None) -> None:
    _write("warn", message, args, fields)


warning = warn


def error(message: str, *args, fields=None) -> None:
    _write("error", message, args, fields)
