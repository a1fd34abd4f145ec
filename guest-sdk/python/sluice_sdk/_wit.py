"""Access to the bindings componentize-py generates from the WIT (`wit_world`).

They exist only inside a component build. They are imported here, when the SDK is
imported, because a component can import nothing later: componentize-py snapshots the
interpreter after the build-time imports, and at run time there is no filesystem to
load a module from. Natively (unit tests of schemas, manifests, HMAC) they are absent,
and calling a host function raises `RuntimeError` saying so.
"""

from __future__ import annotations

import importlib

_MODULES = ("sluice_flow_types", "log", "state", "connections", "config", "context",
            "invoker", "wasi_http_types", "outgoing_handler", "streams", "poll", "error")

_loaded: dict = {}
for _name in _MODULES:
    try:
        _loaded[_name] = importlib.import_module(f"wit_world.imports.{_name}")
    except ImportError:  # natively, or `invoker` in world `component`
        pass


def imports(name: str):
    """The generated module `wit_world.imports.<name>` (e.g. `state`, `log`)."""
    try:
        return _loaded[name]
    except KeyError as err:
        raise RuntimeError(
            f"sluice host interface `{name}` is not available here: host interfaces exist "
            "only inside a component built with `python -m sluice_sdk.build`, and `invoker` "
            "only in a code-native flow (world `flow`)"
        ) from err


def types():
    return imports("sluice_flow_types")


def err_value(exc: BaseException):
    """The payload of a generated `Err` exception, or None for any other exception."""
    try:
        from componentize_py_types import Err
    except ImportError:
        return None
    if isinstance(exc, Err):
        return exc.value
    return None
