"""Declaring a component: its key, version, display, actions, triggers, data sources
and connection types. The manifest (docs/manifest.md) is derived from the
declarations; calls are dispatched to the handlers by key, their input parsed into
the handler's annotated type.

    component = Component("text", "0.1.0", label="Text", description="...")

    @component.action("replace", label="Replace")
    def replace(ctx: Context, input: ReplaceInput) -> str: ...
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from typing import Any, Callable, Optional

from .errors import InvalidInput
from .schema import NoInput, input_schema, parse

_KEY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$")

DATA_SOURCE_TYPES = ("string", "date", "timestamp", "picklist", "schedule", "code", "boolean",
                     "number", "objectSelection", "objectFieldMap", "jsonForm")

_current: dict = {}  # the declared component / flow the exports dispatch to


def current(kind: str):
    """The `Component` (kind "component") or `Flow` (kind "flow") the module declared."""
    return _current.get(kind)


def _display(key: str, label: Optional[str], description: Optional[str], icon_path=None):
    display = {"label": label or key, "description": description or ""}
    if icon_path:
        display["iconPath"] = icon_path
    return display


def input_hint(handler: Callable, position: int):
    """The annotation of the handler's parameter at `position` (None when absent)."""
    params = list(inspect.signature(handler).parameters.values())
    if len(params) <= position:
        return NoInput
    try:
        hints = typing.get_type_hints(handler, include_extras=True)
    except Exception:  # an annotation that does not resolve: treat as untyped
        hints = {}
    return hints.get(params[position].name)


class _Declared:
    def __init__(self, key: str, handler: Callable, label, description, schema, position):
        self.key = key
        self.handler = handler
        self.label = label
        self.description = description or (inspect.getdoc(handler) or "").split("\n\n")[0] \
            .replace("\n", " ")
        self.hint = input_hint(handler, position)
        self.schema = schema if schema is not None else input_schema(self.hint)

    def parse(self, raw: str, what: str):
        try:
            value = json.loads(raw) if raw.strip() else None
        except ValueError as err:
            raise InvalidInput(f"invalid {what}: not JSON: {err}") from None
        if isinstance(self.hint, type) and self.hint is NoInput:
            return NoInput()
        return parse(self.hint, value, what)


class Action(_Declared):
    def __init__(self, key, handler, label=None, description=None, inputs=None,
                 branches=None):
        super().__init__(key, handler, label, description, inputs, 1)
        self.branches = list(branches or [])

    def manifest(self) -> dict:
        return {
            "display": _display(self.key, self.label, self.description),
            "inputs": self.schema,
            "allowsBranching": bool(self.branches),
            "staticBranchNames": self.branches,
        }


class Trigger(_Declared):
    """A declared trigger; `@trigger.on_deploy` / `@trigger.on_remove` add instance
    hooks taking `(ctx, inputs)`. Calling it calls the handler (for unit tests)."""

    def __init__(self, key, handler, label=None, description=None, inputs=None,
                 branches=None, synchronous_response="valid"):
        super().__init__(key, handler, label, description, inputs, 2)
        if synchronous_response not in ("invalid", "valid", "required"):
            raise ValueError("synchronous_response is `invalid`, `valid` or `required`")
        self.branches = list(branches or [])
        self.synchronous_response = synchronous_response
        self.deploy_hook: Optional[Callable] = None
        self.remove_hook: Optional[Callable] = None

    def __call__(self, *args, **kwargs):
        return self.handler(*args, **kwargs)

    def on_deploy(self, hook: Callable) -> Callable:
        self.deploy_hook = hook
        return hook

    def on_remove(self, hook: Callable) -> Callable:
        self.remove_hook = hook
        return hook

    def manifest(self) -> dict:
        manifest = {
            "display": _display(self.key, self.label, self.description),
            "inputs": self.schema,
            "synchronousResponse": self.synchronous_response,
            "hasInstanceHooks": self.deploy_hook is not None or self.remove_hook is not None,
        }
        if self.branches:
            manifest["allowsBranching"] = True
            manifest["staticBranchNames"] = self.branches
        return manifest


class DataSource(_Declared):
    def __init__(self, key, handler, label=None, description=None, inputs=None,
                 kind="picklist"):
        super().__init__(key, handler, label, description, inputs, 1)
        if kind not in DATA_SOURCE_TYPES:
            raise ValueError(f"data source type {kind!r} is not one of {DATA_SOURCE_TYPES}")
        self.kind = kind

    def manifest(self) -> dict:
        return {
            "display": _display(self.key, self.label, self.description),
            "inputs": self.schema,
            "dataSourceType": self.kind,
        }


def picklist_item(key: str, label: str) -> dict:
    """One entry of a picklist data source's result."""
    return {"key": key, "label": label}


class ConnectionType:
    """A connection type the component accepts: `key`, `kind` (the guest's
    `connection.kind`), and the input fields as a dataclass / TypedDict (or a schema).
    `oauth2` is the manifest's `oauth2` object (docs/manifest.md) for a connection the
    host runs OAuth 2.0 for."""

    def __init__(self, key: str, kind: str, *, label=None, description=None, inputs=None,
                 oauth2: Optional[dict] = None):
        self.key = key
        self.kind = kind
        self.label = label
        self.description = description
        if inputs is None:
            self.schema = {"type": "object"}
        elif isinstance(inputs, dict):
            self.schema = inputs
        else:
            self.schema = input_schema(inputs)
        self.oauth2 = oauth2

    def manifest(self) -> dict:
        manifest = {
            "key": self.key,
            "kind": self.kind,
            "display": _display(self.key, self.label, self.description),
            "inputs": self.schema,
        }
        if self.oauth2 is not None:
            manifest["oauth2"] = self.oauth2
        return manifest


class Component:
    """A connector. Creating it makes it the module's component: the build exports it."""

    def __init__(self, key: str, version: str, *, label: Optional[str] = None,
                 description: Optional[str] = None, icon_path: Optional[str] = None):
        self.key = key
        self.version = version
        self.label = label
        self.description = description
        self.icon_path = icon_path
        self.actions: dict = {}
        self.triggers: dict = {}
        self.data_sources: dict = {}
        self.connections: list = []
        self._duplicates: list = []
        _current["component"] = self

    def _add(self, table: dict, what: str, item) -> None:
        if item.key in table:
            self._duplicates.append(f"{what} `{item.key}` is declared twice")
        table[item.key] = item

    def action(self, key: str, *, label=None, description=None, inputs=None, branches=None):
        """Decorator: declares `handler(ctx, input) -> value | Output` as action `key`.
        `inputs` gives the schema explicitly (else it is derived from the annotation)."""

        def register(handler):
            self._add(self.actions, "action",
                      Action(key, handler, label, description, inputs, branches))
            return handler

        return register

    def trigger(self, key: str, *, label=None, description=None, inputs=None, branches=None,
                synchronous_response="valid"):
        """Decorator: declares `handler(ctx, request, inputs) -> TriggerResponse`."""

        def register(handler):
            trigger = Trigger(key, handler, label, description, inputs, branches,
                              synchronous_response)
            self._add(self.triggers, "trigger", trigger)
            return trigger

        return register

    def data_source(self, key: str, *, label=None, description=None, inputs=None,
                    kind="picklist"):
        """Decorator: declares `handler(ctx, input) -> JSON value` as data source `key`."""

        def register(handler):
            self._add(self.data_sources, "data source",
                      DataSource(key, handler, label, description, inputs, kind))
            return handler

        return register

    def connection(self, connection: ConnectionType) -> ConnectionType:
        """Declares an accepted connection type; the first one is the default."""
        self.connections.append(connection)
        return connection

    def manifest(self) -> dict:
        return {
            "key": self.key,
            "version": self.version,
            "display": _display(self.key, self.label, self.description, self.icon_path),
            "actions": {k: a.manifest() for k, a in self.actions.items()},
            "triggers": {k: t.manifest() for k, t in self.triggers.items()},
            "dataSources": {k: d.manifest() for k, d in self.data_sources.items()},
            "connections": [c.manifest() for c in self.connections],
        }

    def validate(self) -> list:
        """Problems of the declaration (key syntax, duplicates, non-object inputs);
        empty when it is fine. Call it from a unit test."""
        problems = list(self._duplicates)
        if not _KEY.match(self.key):
            problems.append(f"component key `{self.key}` must be letters, digits, `-` and "
                            "`_`, starting and ending with a letter or digit")
        if not self.version.strip():
            problems.append("component version is empty")
        for what, table in (("action", self.actions), ("trigger", self.triggers),
                            ("data source", self.data_sources)):
            for key, item in table.items():
                if not key:
                    problems.append(f"{what} with an empty key")
                if item.schema.get("type") != "object":
                    problems.append(f"inputs of {what} `{key}` are not an object schema")
        seen = set()
        for connection in self.connections:
            if connection.key in seen:
                problems.append(f"connection `{connection.key}` is declared twice")
            seen.add(connection.key)
        return problems


def unknown(what: str, key: str, table: dict) -> InvalidInput:
    known = ", ".join(f"`{k}`" for k in table)
    return InvalidInput(f"unknown {what} `{key}` (known: {known})")
