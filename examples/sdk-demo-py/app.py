"""A tour of the Python SDK's surface, exercised end to end by
runtime/tests/python_sdk.rs: state scopes with compare-and-swap, connections, config,
the execution context, logging, the HTTP client, a signed webhook trigger with
branches and instance hooks, a data source, outputs with status and branch."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated, Optional, TypedDict

from sluice_sdk import (Component, ConnectionError, ConnectionType, Context, HttpResponse,
                        InvalidInput, NoInput, Output, Request, Retryable, TriggerResponse,
                        hmac, http, log, picklist_item, schema_options)

component = Component("sdk-demo-py", "0.1.0", label="SDK demo (Python)",
                      description="Every part of the Python SDK, used once.")


@schema_options(rename_all="camelCase")
@dataclass
class ApiKeyFields:
    """Fields a customer fills in when connecting."""

    api_key: Annotated[str, "API key"]
    base_url: Annotated[Optional[str], "API base URL"] = None


component.connection(ConnectionType("acme", "api-key", label="Acme API key",
                                    inputs=ApiKeyFields))


class Priority(Enum):
    LOW = "low"
    NORMAL = "normal"
    URGENT = "urgent"


@dataclass
class CreateTicket:
    """A ticket to open."""

    subject: Annotated[str, "Ticket subject"]
    priority: Priority = Priority.NORMAL
    tags: list[str] = field(default_factory=list)


@component.action("createTicket", label="Create ticket")
def create_ticket(ctx: Context, input: CreateTicket) -> dict:
    """Opens a ticket through the Acme API of the `acme` connection."""
    fields = ctx.connection("acme").fields_as(ApiKeyFields)
    base = fields.base_url or "https://api.acme.example"
    ticket = http.post(f"{base}/tickets", json={"subject": input.subject,
                                                "urgent": input.priority is Priority.URGENT,
                                                "tags": input.tags},
                       bearer=fields.api_key, connection_key="acme",
                       timeout=10).raise_for_status().json()
    log.info("created ticket %s", ticket["id"], fields={"id": ticket["id"]})
    return ticket


class CountInput(TypedDict, total=False):
    by: int


@component.action("count")
def count(ctx: Context, input: CountInput) -> dict:
    """Adds `by` to the flow-scoped counter with a CAS loop; remembers the execution."""
    by = input.get("by", 1)
    value = ctx.flow_state.update("count", lambda n: (n or 0) + by)
    ctx.execution_state.set("last", {"count": value})
    first = ctx.instance_state.compare_and_swap("first", None, ctx.execution_id)
    return {"count": value, "first": first, "last": ctx.execution_state.get("last")}


@component.action("forget")
def forget(ctx: Context, input: NoInput) -> dict:
    return {"existed": ctx.flow_state.delete("count"), "now": ctx.flow_state.get("count")}


@component.action("whoami")
def whoami(ctx: Context, input: NoInput) -> dict:
    print("whoami called")
    return {"execution": ctx.execution_id, "tenant": ctx.tenant_id,
            "customer": ctx.customer_id, "instance": ctx.instance_id, "flow": ctx.flow_name,
            "attempt": ctx.attempt, "webhook": ctx.own_webhook_url(),
            "region": ctx.config("region", "us"), "config": ctx.config_all()}


@component.action("needsRegion")
def needs_region(ctx: Context, input: NoInput) -> str:
    return ctx.require_config("region", type=str)


@component.action("shaped", branches=["found", "missing"])
def shaped(ctx: Context, input: dict) -> Output:
    if input.get("csv"):
        return Output.bytes(b"a,b\n1,2\n", "text/csv")
    branch = "found" if input.get("id") else "missing"
    return Output.json({"id": input.get("id")}, status=201, headers={"location": "/t/1"},
                       branch=branch)


@component.action("flaky")
def flaky(ctx: Context, input: dict) -> None:
    if input.get("kind") == "retryable":
        raise Retryable("try again later")
    if input.get("kind") == "connection":
        raise ConnectionError("acme", "key revoked")
    raise InvalidInput("no such kind")


@component.trigger("ticketEvent", label="Ticket event", branches=["urgent", "normal"])
def ticket_event(ctx: Context, request: Request, inputs: NoInput) -> TriggerResponse:
    if request.query_param("challenge"):
        return TriggerResponse.respond(HttpResponse.text(200, request.query_param("challenge")))
    secret = ctx.require_config("webhookSecret")
    if not hmac.verify_github_signature(secret, request.body,
                                        request.header("X-Hub-Signature-256")):
        return TriggerResponse.reject(401, "invalid signature")
    event = request.json()
    branch = "urgent" if event.get("urgent") else "normal"
    return TriggerResponse.accept({"ticket": event.get("ticket")}, branch=branch,
                                  response=HttpResponse.json(202, {"queued": True}))


@dataclass
class HookInputs:
    channel: str


@component.trigger("channelEvent", synchronous_response="invalid")
def channel_event(ctx: Context, request: Request, inputs: HookInputs) -> TriggerResponse:
    return TriggerResponse.accept_request(request)


@channel_event.on_deploy
def subscribe(ctx: Context, inputs: HookInputs) -> None:
    ctx.instance_state.set("subscription", {"channel": inputs.channel,
                                            "url": ctx.own_webhook_url()})


@channel_event.on_remove
def unsubscribe(ctx: Context, inputs: HookInputs) -> None:
    ctx.instance_state.delete("subscription")


@component.data_source("priorities", label="Priorities")
def priorities(ctx: Context, input: NoInput) -> list:
    return [picklist_item(p.value, p.name.title()) for p in Priority]


@dataclass
class Fetch:
    url: str


@component.action("fetch")
def fetch(ctx: Context, input: Fetch) -> dict:
    """GETs `url`, attributing 401/403 to the `acme` connection; errors by status."""
    response = http.get(input.url, connection_key="acme", timeout=5).raise_for_status()
    return {"status": response.status, "body": response.json()}
