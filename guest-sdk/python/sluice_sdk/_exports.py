"""The WIT exports (`connector` of world `component`, `code-flow` of world `flow`) as
the classes componentize-py looks for, dispatching to the declared `Component` or
`Flow`. The build's entry module imports the author's module (which declares it) and
then one of these classes.

Errors: a `SluiceError` becomes the WIT error of its kind; any other exception becomes
`fatal` with its type, message and traceback. `MemoryError` is let through so the
call traps and the host reports the memory limit rather than a guest error.
"""

from __future__ import annotations

import json
import traceback

from componentize_py_types import Err

from . import _wit
from .component import current, unknown
from .context import Context
from .errors import SluiceError
from .output import dumps, to_wit
from .trigger import Request, TriggerResponse


def _to_err(exc: BaseException) -> Err:
    t = _wit.types()
    if isinstance(exc, SluiceError):
        if exc.kind == "invalid-input":
            return Err(t.Error_InvalidInput(exc.message))
        if exc.kind == "connection":
            return Err(t.Error_Connection(t.ConnectionProblem(getattr(exc, "key", ""),
                                                              exc.message)))
        if exc.kind == "retryable":
            return Err(t.Error_Retryable(exc.message))
        return Err(t.Error_Fatal(exc.message))
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Err(t.Error_Fatal(f"{type(exc).__name__}: {exc}\n{detail}"))


def _guard(call):
    try:
        return call()
    except MemoryError:
        raise
    except Err:
        raise
    except Exception as exc:  # every other failure is reported, never a trap
        raise _to_err(exc) from None


def _component():
    component = current("component")
    if component is None:
        raise SluiceError("the module declares no `Component`")
    return component


class Connector:
    def manifest(self) -> str:
        return json.dumps(_component().manifest(), separators=(",", ":"))

    def run_action(self, ctx, action: str, input: str):
        def call():
            component = _component()
            declared = component.actions.get(action)
            if declared is None:
                raise unknown("action", action, component.actions)
            value = declared.handler(Context(ctx),
                                     declared.parse(input, f"input of action `{action}`"))
            return to_wit(value)

        return _guard(call)

    def run_trigger(self, ctx, trigger: str, request, inputs: str):
        def call():
            component = _component()
            declared = component.triggers.get(trigger)
            if declared is None:
                raise unknown("trigger", trigger, component.triggers)
            parsed = declared.parse(inputs, f"inputs of trigger `{trigger}`")
            decision = declared.handler(Context(ctx), Request._from_wit(request), parsed)
            if not isinstance(decision, TriggerResponse):
                raise SluiceError(f"trigger `{trigger}` returned {type(decision).__name__}, "
                                  "not a TriggerResponse")
            return decision._to_wit()

        return _guard(call)

    def run_data_source(self, ctx, name: str, input: str) -> str:
        def call():
            component = _component()
            declared = component.data_sources.get(name)
            if declared is None:
                raise unknown("data source", name, component.data_sources)
            value = declared.handler(Context(ctx),
                                     declared.parse(input, f"input of data source `{name}`"))
            return dumps(value)

        return _guard(call)

    def _hook(self, ctx, trigger: str, inputs: str, which: str) -> None:
        component = _component()
        declared = component.triggers.get(trigger)
        if declared is None:
            raise unknown("trigger", trigger, component.triggers)
        hook = declared.deploy_hook if which == "deploy" else declared.remove_hook
        if hook is None:
            return None  # a trigger without hooks: deploying or removing does nothing
        hook(Context(ctx), declared.parse(inputs, f"inputs of trigger `{trigger}`"))
        return None

    def on_instance_deploy(self, ctx, trigger: str, inputs: str) -> None:
        return _guard(lambda: self._hook(ctx, trigger, inputs, "deploy"))

    def on_instance_remove(self, ctx, trigger: str, inputs: str) -> None:
        return _guard(lambda: self._hook(ctx, trigger, inputs, "remove"))


class CodeFlow:
    def manifest(self) -> str:
        flow = current("flow")
        if flow is None:
            raise RuntimeError("the module declares no `Flow`")
        return json.dumps(flow.manifest(), separators=(",", ":"))

    def on_execution(self, ctx, payload: str):
        from .flow import FlowContext

        def call():
            flow = current("flow")
            if flow is None or flow.handler is None:
                raise SluiceError("the module declares no `Flow` with an `on_execution` handler")
            return to_wit(flow.handler(FlowContext(ctx), flow.parse(payload)))

        return _guard(call)
