"""The context every handler receives first: who and what the execution is, state in
four scopes, connections, config variables and logging. Every host call goes through
the generated bindings; failures become the SDK's errors with the right kind.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any, Callable, Optional

from . import _wit
from . import log as _log
from .errors import ConnectionError, Fatal, InvalidInput, Retryable, SluiceError
from .schema import parse


class Scope(enum.Enum):
    """A state scope (see the WIT `state.scope`)."""

    EXECUTION = "execution"
    FLOW = "flow"
    INSTANCE = "instance"
    INTEGRATION = "integration"


def _dumps(value) -> str:
    from .schema import json_default

    return json.dumps(value, default=json_default, separators=(",", ":"), ensure_ascii=False)


def _state_error(exc: BaseException, key: str) -> SluiceError:
    value = _wit.err_value(exc)
    name = type(value).__name__
    message = getattr(value, "value", str(exc))
    if name.endswith("Unavailable"):
        return Retryable(f"state store unavailable (key `{key}`): {message}")
    if name.endswith("QuotaExceeded"):
        return Fatal(f"state quota exceeded writing `{key}`: {message}")
    if name.endswith("TooLarge"):
        return Fatal(f"state key or value too large (`{key}`): {message}")
    return Fatal(f"state `{key}`: {message}")


class State:
    """JSON values in one scope. `None` stands for an absent key, as `option` does in
    the WIT; store JSON `null` only if you never need to tell it from absence."""

    def __init__(self, scope: Scope):
        self.scope = scope

    def _raw_scope(self):
        return getattr(_wit.imports("state").Scope, self.scope.name)

    def get(self, key: str, default: Any = None, *, type: Any = None) -> Any:
        """The value of `key`, or `default` when absent; with `type=`, parsed into it."""
        state = _wit.imports("state")
        try:
            raw = state.get(self._raw_scope(), key)
        except Exception as exc:
            if _wit.err_value(exc) is None:
                raise
            raise _state_error(exc, key) from None
        if raw is None:
            return default
        value = json.loads(raw)
        if type is not None:
            try:
                return parse(type, value, f"state `{key}`")
            except InvalidInput as err:
                raise Fatal(err.message) from None  # stored data of the wrong shape
        return value

    def set(self, key: str, value: Any) -> None:
        state = _wit.imports("state")
        try:
            state.set(self._raw_scope(), key, _dumps(value))
        except Exception as exc:
            if _wit.err_value(exc) is None:
                raise
            raise _state_error(exc, key) from None

    def delete(self, key: str) -> bool:
        """Deletes `key`; returns whether it existed."""
        state = _wit.imports("state")
        try:
            return state.delete(self._raw_scope(), key)
        except Exception as exc:
            if _wit.err_value(exc) is None:
                raise
            raise _state_error(exc, key) from None

    def compare_and_swap(self, key: str, expected: Any, new: Any) -> bool:
        """Atomically replaces the value when it equals `expected` (`None`: absent);
        `new` of `None` deletes the key. Returns whether the swap happened."""
        state = _wit.imports("state")
        try:
            return state.compare_and_swap(
                self._raw_scope(),
                key,
                None if expected is None else _dumps(expected),
                None if new is None else _dumps(new),
            )
        except Exception as exc:
            if _wit.err_value(exc) is None:
                raise
            raise _state_error(exc, key) from None

    def update(self, key: str, change: Callable[[Any], Any], attempts: int = 100) -> Any:
        """Read-modify-write safe against concurrent executions (a CAS loop):
        `change(current_or_None)` returns the new value (`None` deletes)."""
        for _ in range(attempts):
            current = self.get(key)
            new = change(current)
            if self.compare_and_swap(key, current, new):
                return new
        raise Retryable(f"state `{key}` kept changing during {attempts} attempts")


@dataclasses.dataclass
class OAuthToken:
    access_token: str
    token_type: str
    expires_at_ms: Optional[int]
    scopes: list


@dataclasses.dataclass
class Connection:
    """A configured connection: its `key`, `kind`, input `fields` and OAuth `token`."""

    key: str
    kind: str
    fields: dict
    token: Optional[OAuthToken] = None

    def field(self, name: str, type: Any = None) -> Any:
        """One field; a missing or mistyped field is a connection error."""
        if name not in self.fields:
            raise ConnectionError(self.key, f"connection `{self.key}` has no field `{name}`")
        value = self.fields[name]
        if type is None:
            return value
        try:
            return parse(type, value, f"field `{name}` of connection `{self.key}`")
        except InvalidInput as err:
            raise ConnectionError(self.key, err.message) from None

    def fields_as(self, cls) -> Any:
        """The fields read into the class declared as the connection type's inputs."""
        try:
            return parse(cls, self.fields, f"fields of connection `{self.key}`")
        except InvalidInput as err:
            raise ConnectionError(self.key, err.message) from None

    def bearer_token(self) -> str:
        if self.token is None:
            raise ConnectionError(self.key, f"connection `{self.key}` has no OAuth token")
        return self.token.access_token


class Context:
    """What a handler knows and can do. Built by the SDK from the call's context."""

    log = _log

    def __init__(self, raw):
        self._raw = raw
        self.execution_id: str = raw.execution_id
        self.tenant_id: str = raw.tenant_id
        self.customer_id: Optional[str] = raw.customer_id
        self.customer_external_id: Optional[str] = raw.customer_external_id
        self.integration_id: str = raw.integration_id
        self.instance_id: str = raw.instance_id
        self.flow_name: str = raw.flow_name
        self.step: Optional[str] = raw.step
        self.attempt: int = raw.attempt
        self.started_at_ms: int = raw.started_at_ms
        self.webhook_urls: dict = dict(raw.webhook_urls)

    # -- execution ---------------------------------------------------------------

    def webhook_url(self, flow_name: str) -> Optional[str]:
        return self.webhook_urls.get(flow_name)

    def own_webhook_url(self) -> str:
        url = self.webhook_urls.get(self.flow_name)
        if url is None:
            raise Fatal(f"the host gave no webhook URL for flow `{self.flow_name}`")
        return url

    # -- state -------------------------------------------------------------------

    def state(self, scope: Scope) -> State:
        return State(scope)

    @property
    def flow_state(self) -> State:
        return State(Scope.FLOW)

    @property
    def instance_state(self) -> State:
        return State(Scope.INSTANCE)

    @property
    def integration_state(self) -> State:
        return State(Scope.INTEGRATION)

    @property
    def execution_state(self) -> State:
        return State(Scope.EXECUTION)

    # -- connections ---------------------------------------------------------------

    def connection(self, key: str) -> Connection:
        """The connection of config variable `key`; any problem is a connection error."""
        connections = _wit.imports("connections")
        try:
            raw = connections.get(key)
        except Exception as exc:
            value = _wit.err_value(exc)
            if value is None:
                raise
            what = type(value).__name__.split("_")[-1]
            detail = {"NotFound": "is not configured", "Expired": "expired",
                      "Unavailable": "is unavailable"}.get(what, "failed")
            raise ConnectionError(key, f"connection `{key}` {detail}: {value.value}") from None
        try:
            fields = json.loads(raw.fields)
        except ValueError:
            fields = {}
        token = None
        if raw.token is not None:
            t = raw.token
            token = OAuthToken(t.access_token, t.token_type, t.expires_at_ms, list(t.scopes))
        return Connection(raw.key, raw.kind, fields if isinstance(fields, dict) else {}, token)

    # -- config --------------------------------------------------------------------

    def config(self, key: str, default: Any = None, *, type: Any = None) -> Any:
        """Config variable `key` (JSON), or `default` when unset."""
        raw = _wit.imports("config").get(key)
        if raw is None:
            return default
        value = json.loads(raw)
        if type is not None:
            value = parse(type, value, f"config variable `{key}`")
        return value

    def require_config(self, key: str, *, type: Any = None) -> Any:
        """Config variable `key`; unset is `invalid-input` (the instance is misconfigured)."""
        missing = object()
        value = self.config(key, missing, type=type)
        if value is missing:
            raise InvalidInput(f"config variable `{key}` is not set")
        return value

    def config_all(self) -> dict:
        return {k: json.loads(v) for k, v in _wit.imports("config").all()}
