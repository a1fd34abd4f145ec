"""Code-native flows (world `flow`): one handler per execution, with a context that can
also invoke components' actions and other flows. Each call runs in its own sandbox
and is recorded as a step; a failed call raises the error kind the callee chose."""

from __future__ import annotations

import json
from typing import Any, Callable, Optional

from . import _wit
from .component import _current, input_hint
from .context import Context
from .errors import ConnectionError, Fatal, InvalidInput, Retryable, SluiceError
from .output import Output, dumps, from_wit

TRIGGER_TYPES = ("webhook", "schedule", "instance-deploy", "instance-remove", "flow")


class FlowTrigger:
    """How the flow starts: `FlowTrigger.webhook()`, `.schedule(cron, timezone)`,
    `.instance_deploy()`, `.instance_remove()` or `.flow()` (invoked by other flows)."""

    def __init__(self, manifest: dict):
        self.manifest = manifest

    @classmethod
    def webhook(cls):
        return cls({"type": "webhook"})

    @classmethod
    def schedule(cls, cron: str, timezone: str = "UTC"):
        return cls({"type": "schedule", "cron": cron, "timezone": timezone})

    @classmethod
    def instance_deploy(cls):
        return cls({"type": "instance-deploy"})

    @classmethod
    def instance_remove(cls):
        return cls({"type": "instance-remove"})

    @classmethod
    def flow(cls):
        return cls({"type": "flow"})


def error_from_wit(value) -> SluiceError:
    """A WIT `error` as the SDK's exception of the same kind."""
    name = type(value).__name__
    if name == "Error_Connection":
        return ConnectionError(value.value.key, value.value.message)
    cls = {"Error_InvalidInput": InvalidInput, "Error_Retryable": Retryable}.get(name, Fatal)
    return cls(str(value.value))


class FlowContext(Context):
    """A `Context` plus calls into components and other flows."""

    def invoke(self, component: str, action: str, input: Any) -> Output:
        """Runs `action` of `component` (a key the flow declares) with `input`."""
        return self._call(lambda inv: inv.invoke(component, action, dumps(input)))

    def invoke_json(self, component: str, action: str, input: Any) -> Any:
        """`invoke`, returning the JSON value of the output (fatal when it is bytes)."""
        output = self.invoke(component, action, input)
        if output.json_text is None:
            raise Fatal(f"`{component}.{action}` returned bytes, not JSON")
        return output.value()

    def invoke_flow(self, name: str, payload: Any) -> Output:
        """Runs flow `name` of the same instance and waits for its result."""
        return self._call(lambda inv: inv.invoke_flow(name, dumps(payload)))

    def invoke_flow_async(self, name: str, payload: Any) -> str:
        """Queues flow `name`; returns the child execution's id at once."""
        invoker = _wit.imports("invoker")
        try:
            return invoker.invoke_flow_async(name, dumps(payload))
        except Exception as exc:
            value = _wit.err_value(exc)
            if value is None:
                raise
            raise error_from_wit(value) from None

    def _call(self, call) -> Output:
        invoker = _wit.imports("invoker")
        try:
            return from_wit(call(invoker))
        except Exception as exc:
            value = _wit.err_value(exc)
            if value is None:
                raise
            raise error_from_wit(value) from None


class Flow:
    """A code-native flow. Creating it makes it the module's flow: the build exports it.

        flow = Flow("github-acme-sync", description="...", trigger=FlowTrigger.webhook())

        @flow.on_execution
        def run(ctx: FlowContext, payload: IssueEvent) -> dict: ...
    """

    def __init__(self, name: str, *, description: str = "",
                 trigger: Optional[FlowTrigger] = None):
        self.name = name
        self.description = description
        self.trigger = trigger or FlowTrigger.webhook()
        self.handler: Optional[Callable] = None
        self.hint: Any = None
        _current["flow"] = self

    def on_execution(self, handler: Callable) -> Callable:
        self.handler = handler
        self.hint = input_hint(handler, 1)
        return handler

    def manifest(self) -> dict:
        return {"name": self.name, "description": self.description,
                "trigger": self.trigger.manifest}

    def parse(self, raw: str):
        from .schema import parse

        try:
            value = json.loads(raw) if raw.strip() else None
        except ValueError as err:
            raise InvalidInput(f"invalid payload: not JSON: {err}") from None
        return parse(self.hint, value, "payload")
