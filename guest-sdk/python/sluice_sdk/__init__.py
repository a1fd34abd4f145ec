"""Sluice SDK for Python guests: connectors (world `component`) and code-native flows
(world `flow`), built into WebAssembly components with componentize-py.

    from sluice_sdk import Component, Context

    component = Component("acme", "0.1.0", label="Acme")

    @component.action("echo")
    def echo(ctx: Context, input: dict) -> dict:
        return input

Build with `python -m sluice_sdk.build PROJECT_DIR -o acme.wasm`. See README.md.
"""

from . import hmac, http, log
from .component import (Action, Component, ConnectionType, DataSource, Trigger,
                        picklist_item)
from .context import Connection, Context, OAuthToken, Scope, State
from .errors import ConnectionError, Fatal, InvalidInput, Retryable, SluiceError
from .flow import Flow, FlowContext, FlowTrigger
from .output import Output
from .schema import NoInput, object_schema, parse, schema_of, schema_options
from .trigger import HttpResponse, Request, TriggerResponse

__all__ = [
    "Action", "Component", "Connection", "ConnectionError", "ConnectionType", "Context",
    "DataSource", "Fatal", "Flow", "FlowContext", "FlowTrigger", "HttpResponse",
    "InvalidInput", "NoInput", "OAuthToken", "Output", "Request", "Retryable", "Scope",
    "SluiceError", "State", "Trigger", "TriggerResponse", "hmac", "http", "log",
    "object_schema", "parse", "picklist_item", "schema_of", "schema_options",
]

WIT_PACKAGE = "sluice:flow@0.1.0"
COMPONENTIZE_PY_VERSION = "0.25.1"
