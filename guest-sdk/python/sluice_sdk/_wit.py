"""Access to the bindings componentize-py generates from the WIT (`wit_world`).

They exist only inside a component build, so every import is lazy: the rest of the
SDK (schemas, manifests, HMAC) also runs in plain CPython for unit tests. Calling a
host function outside the sandbox raises `RuntimeError` saying so.
"""

from __future__ import annotations

import importlib


def imports(name: str):
    """The generated module `wit_world.imports.<name>` (e.g. `state`, `log`)."""
    try:
        return importlib.import_module(f"wit_world.imports.{name}")
    except ImportError as err:  # natively, outside a component
        raise RuntimeError(
            f"sluice host interface `{name}` is only available inside a component "
            "(build it with `python -m sluice_sdk.build` and run it through the harness)"
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
