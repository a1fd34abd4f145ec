"""A code-native flow in Python: invokes the `text` component twice and another flow,
keeps a running total in execution state. Tested by runtime/tests/python_sdk.rs."""

from __future__ import annotations

from dataclasses import dataclass

from sluice_sdk import Flow, FlowContext, FlowTrigger, Output

flow = Flow("ids-to-numbers", description="Strips prefixes off external ids and sums them",
            trigger=FlowTrigger.webhook())


@dataclass
class Payload:
    ids: list[str]
    notify: bool = False


@flow.on_execution
def run(ctx: FlowContext, payload: Payload) -> Output:
    numbers = []
    for external in payload.ids:
        stripped = ctx.invoke_json("text", "replace", {"text": external, "find": "gh-"})
        numbers.append(ctx.invoke_json("text", "toInteger", {"text": stripped}))
        ctx.execution_state.set("total", sum(numbers))
    result = {"numbers": numbers, "total": ctx.execution_state.get("total")}
    if payload.notify:
        notified = ctx.invoke_flow("notify", result)
        result["notified"] = notified.value()
    return Output.json(result, status=200)
