"""Webhook triggers: the request a trigger receives, and its decision (accept with a
payload and branch, optionally answering the caller; or respond without running)."""

from __future__ import annotations

import json
from typing import Any, Optional

from .errors import InvalidInput
from .output import dumps


class Request:
    """An HTTP request received by a webhook. Header names are lower-cased."""

    def __init__(self, method: str = "POST", path: str = "", query=None, headers=None,
                 body: bytes = b""):
        self.method = method
        self.path = path
        self.query = list(query or [])
        self.headers = [(k.lower(), v) for k, v in (headers or [])]
        self.body = bytes(body)

    @classmethod
    def _from_wit(cls, raw) -> "Request":
        return cls(raw.method, raw.path, raw.query, raw.headers, raw.body)

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def header_all(self, name: str) -> list:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def query_param(self, name: str) -> Optional[str]:
        return next((v for k, v in self.query if k == name), None)

    @property
    def content_type(self) -> Optional[str]:
        return self.header("content-type")

    def text(self) -> str:
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InvalidInput(f"request body is not UTF-8: {err}") from None

    def json(self, type: Any = None) -> Any:
        """The body as JSON (parsed into `type` when given); `invalid-input` otherwise."""
        try:
            value = json.loads(self.body)
        except ValueError as err:
            raise InvalidInput(f"request body is not JSON: {err}") from None
        if type is None:
            return value
        from .schema import parse

        return parse(type, value, "request body")


class HttpResponse:
    """A response for the webhook caller."""

    def __init__(self, status: int = 200, body: bytes = b"", headers=None,
                 content_type: Optional[str] = None):
        self.status = status
        self.body = bytes(body)
        self.headers = list((headers or {}).items()) if isinstance(headers, dict) \
            else list(headers or [])
        self.content_type = content_type

    @classmethod
    def text(cls, status: int, text: str, **kwargs) -> "HttpResponse":
        return cls(status, text.encode(), content_type="text/plain; charset=utf-8", **kwargs)

    @classmethod
    def json(cls, status: int, value: Any, **kwargs) -> "HttpResponse":
        return cls(status, dumps(value).encode(), content_type="application/json", **kwargs)

    def _to_wit(self, t):
        return t.HttpResponse(status=self.status, headers=[(str(k), str(v)) for k, v in
                                                            self.headers],
                              content_type=self.content_type, body=self.body)


class TriggerResponse:
    """What a trigger decided. Build it with the class methods:

    - `accept(payload, branch=None, response=None)`: run the flow with `payload`
      (JSON data, or `bytes`), following `branch`, answering the caller with `response`;
    - `accept_request(request, ...)`: the body passes through (JSON when it parses);
    - `reject(status, message)` / `respond(HttpResponse)`: answer without running.
    """

    def __init__(self, accepted: bool, payload: Any = None, branch: Optional[str] = None,
                 response: Optional[HttpResponse] = None):
        self.accepted = accepted
        self.payload = payload
        self.branch = branch
        self.response = response

    @classmethod
    def accept(cls, payload: Any, branch: Optional[str] = None,
               response: Optional[HttpResponse] = None) -> "TriggerResponse":
        return cls(True, payload, branch, response)

    @classmethod
    def accept_request(cls, request: Request, branch: Optional[str] = None,
                       response: Optional[HttpResponse] = None) -> "TriggerResponse":
        try:
            text = request.body.decode("utf-8")
            json.loads(text)  # only checks that it parses: the text passes through as is
            payload: Any = _RawJson(text)
        except ValueError:  # not UTF-8, or not JSON: the bytes pass through
            payload = request.body
        return cls(True, payload, branch, response)

    @classmethod
    def reject(cls, status: int, message: str) -> "TriggerResponse":
        return cls(False, response=HttpResponse.text(status, message))

    @classmethod
    def respond(cls, response: HttpResponse) -> "TriggerResponse":
        return cls(False, response=response)

    def _to_wit(self):
        from . import _wit

        t = _wit.types()
        if not self.accepted:
            return t.TriggerOutcome_Respond(self.response._to_wit(t))
        if isinstance(self.payload, _RawJson):
            data = t.Data_Json(self.payload.text)
        elif isinstance(self.payload, (bytes, bytearray)):
            data = t.Data_Bytes(bytes(self.payload))
        else:
            data = t.Data_Json(dumps(self.payload))
        response = None if self.response is None else self.response._to_wit(t)
        return t.TriggerOutcome_Accept(t.TriggerAccept(payload=data, branch=self.branch,
                                                       response=response))


class _RawJson:
    """A request body that is already JSON text: passed through unchanged."""

    def __init__(self, text: str):
        self.text = text
