"""An HTTP client over `wasi:http/outgoing-handler`, synchronous (it blocks on the
WASI pollables, no asyncio needed). The host sends only to hosts on the instance's
allow-list and never follows redirects.

    resp = http.post(f"{base}/tickets", json={"subject": s}, bearer=key,
                     connection_key="acme", timeout=10)
    ticket = resp.raise_for_status().json()

Status errors (`raise_for_status`): 401/403 are `ConnectionError` of the
`connection_key`, 408/425/429/5xx `Retryable`, other 4xx `Fatal`. Transport errors:
DNS, connect, TLS, timeouts, resets, incomplete responses are `Retryable`; a host off
the allow-list and malformed requests are `Fatal`. Messages carry the method and the
URL without its query string, because API keys often travel in the query.
"""

from __future__ import annotations

import base64
import json as _json
from typing import Any, Optional
from urllib.parse import urlencode, urlsplit

from . import _wit
from .errors import ConnectionError, Fatal, InvalidInput, Retryable

_CHUNK = 4096  # blocking-write-and-flush accepts at most 4096 bytes per call

_RETRYABLE_CODES = {
    "DnsTimeout", "DnsError", "DestinationNotFound", "DestinationUnavailable",
    "DestinationIpUnroutable", "ConnectionRefused", "ConnectionTerminated",
    "ConnectionTimeout", "ConnectionReadTimeout", "ConnectionWriteTimeout",
    "ConnectionLimitReached", "TlsProtocolError", "TlsCertificateError",
    "TlsAlertReceived", "HttpResponseIncomplete", "HttpResponseTimeout",
}


class Response:
    def __init__(self, method: str, url: str, status: int, headers: list, body: bytes,
                 connection_key: Optional[str]):
        self.method = method
        self.url = url
        self.status = status
        self.headers = headers
        self.body = body
        self.connection_key = connection_key

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self, type: Any = None) -> Any:
        try:
            value = _json.loads(self.body)
        except ValueError as err:
            start = self.body[:200].decode("utf-8", errors="replace")
            raise Fatal(f"{self.method} {_redact(self.url)}: response is not JSON ({err}): "
                        f"{start}") from None
        if type is None:
            return value
        from .schema import parse

        try:
            return parse(type, value, f"response of {self.method} {_redact(self.url)}")
        except InvalidInput as err:
            raise Fatal(err.message) from None

    def raise_for_status(self) -> "Response":
        if self.ok or 300 <= self.status < 400:
            return self
        what = f"{self.method} {_redact(self.url)} answered {self.status}: " \
               f"{self.body[:200].decode('utf-8', errors='replace')}"
        if self.status in (401, 403):
            raise ConnectionError(self.connection_key or "", what)
        if self.status in (408, 425, 429) or self.status >= 500:
            raise Retryable(what)
        raise Fatal(what)


def _redact(url: str) -> str:
    return url.split("?", 1)[0]


def request(method: str, url: str, *, headers=None, query=None, json: Any = None,
            form=None, data: Optional[bytes] = None, bearer: Optional[str] = None,
            basic_auth: Optional[tuple] = None, connection=None,
            connection_key: Optional[str] = None, timeout: Optional[float] = None) -> Response:
    """Sends one request and reads the whole response. `connection` (a `Connection`
    with an OAuth token) adds its bearer token and attributes 401/403 to it."""
    wasi = _wit.imports("wasi_http_types")
    handler = _wit.imports("outgoing_handler")
    method = method.upper()
    header_list = list((headers or {}).items()) if isinstance(headers, dict) \
        else list(headers or [])
    if connection is not None:
        connection_key = connection_key or connection.key
        if connection.token is not None:
            bearer = bearer or connection.token.access_token
    if bearer:
        header_list.append(("authorization", f"Bearer {bearer}"))
    if basic_auth:
        user, password = basic_auth
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        header_list.append(("authorization", f"Basic {token}"))
    body = data
    if json is not None:
        from .output import dumps

        body = dumps(json).encode()
        header_list.append(("content-type", "application/json"))
    elif form is not None:
        body = urlencode(list(form.items()) if isinstance(form, dict) else form).encode()
        header_list.append(("content-type", "application/x-www-form-urlencoded"))
    if body:
        # A known length, rather than chunked encoding, which some APIs refuse.
        header_list.append(("content-length", str(len(body))))
    if query:
        sep = "&" if "?" in url else "?"
        url = url + sep + urlencode(list(query.items()) if isinstance(query, dict) else query)
    where = f"{method} {_redact(url)}"

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Fatal(f"{where}: not an absolute http(s) URL")
    try:
        fields = wasi.Fields.from_list([(k, str(v).encode()) for k, v in header_list])
    except Exception as exc:
        raise Fatal(f"{where}: invalid header: {_wit.err_value(exc) or exc}") from None
    outgoing = wasi.OutgoingRequest(fields)
    standard = {"GET": wasi.Method_Get, "HEAD": wasi.Method_Head, "POST": wasi.Method_Post,
                "PUT": wasi.Method_Put, "DELETE": wasi.Method_Delete,
                "OPTIONS": wasi.Method_Options, "PATCH": wasi.Method_Patch}
    outgoing.set_method(standard[method]() if method in standard else wasi.Method_Other(method))
    outgoing.set_scheme(wasi.Scheme_Https() if parts.scheme == "https" else wasi.Scheme_Http())
    outgoing.set_authority(parts.netloc)
    path = parts.path or "/"
    outgoing.set_path_with_query(path + (f"?{parts.query}" if parts.query else ""))

    options = None
    if timeout is not None:
        nanos = int(timeout * 1_000_000_000)
        options = wasi.RequestOptions()
        options.set_connect_timeout(nanos)
        options.set_first_byte_timeout(nanos)
        options.set_between_bytes_timeout(nanos)

    outgoing_body = outgoing.body()
    try:
        future = handler.handle(outgoing, options)
    except Exception as exc:
        raise _transport_error(where, exc) from None
    if body:
        stream = outgoing_body.write()
        try:
            for start in range(0, len(body), _CHUNK):
                stream.blocking_write_and_flush(body[start:start + _CHUNK])
        except Exception as exc:
            raise Retryable(f"{where}: sending the body failed: "
                            f"{_wit.err_value(exc) or exc}") from None
        finally:
            stream.__exit__(None, None, None)  # a body's stream must go before finish
    try:
        wasi.OutgoingBody.finish(outgoing_body, None)
    except Exception as exc:
        raise _transport_error(where, exc) from None

    future.subscribe().block()
    result = future.get()
    future.__exit__(None, None, None)
    incoming = _unwrap(result, where)
    status = incoming.status()
    response_headers = [(k, v.decode("latin-1")) for k, v in incoming.headers().entries()]
    incoming_body = incoming.consume()
    stream = incoming_body.stream()
    chunks = []
    try:
        while True:
            try:
                chunks.append(stream.blocking_read(65536))
            except Exception as exc:
                value = _wit.err_value(exc)
                if value is None:
                    raise
                if type(value).__name__ == "StreamError_Closed":
                    break
                raise Retryable(f"{where}: reading the response failed") from None
    finally:
        stream.__exit__(None, None, None)
        incoming_body.__exit__(None, None, None)
        incoming.__exit__(None, None, None)
    return Response(method, url, status, response_headers, b"".join(chunks), connection_key)


def _unwrap(result, where: str):
    """The response from `future.get()`: option<result<result<response, error-code>>>."""
    from componentize_py_types import Err, Ok

    if result is None:
        raise Retryable(f"{where}: no response")
    if isinstance(result, Err):
        raise Fatal(f"{where}: response already taken")
    inner = result.value if isinstance(result, Ok) else result
    if isinstance(inner, Err):
        raise _error_code(where, inner.value)
    return inner.value if isinstance(inner, Ok) else inner


def _transport_error(where: str, exc: BaseException):
    value = _wit.err_value(exc)
    if value is None:
        return Fatal(f"{where}: {exc}")
    return _error_code(where, value)


def _error_code(where: str, code):
    name = type(code).__name__.split("_", 1)[-1]
    detail = getattr(code, "value", None)
    text = f"{where}: {name}" + (f" ({detail})" if detail not in (None, "") else "")
    if name == "HttpRequestDenied":
        return Fatal(f"{where}: HTTP-request-denied: the host is not on the instance's "
                     "allow-list")
    if name in _RETRYABLE_CODES:
        return Retryable(text)
    return Fatal(text)


def get(url: str, **kwargs) -> Response:
    return request("GET", url, **kwargs)


def post(url: str, **kwargs) -> Response:
    return request("POST", url, **kwargs)


def put(url: str, **kwargs) -> Response:
    return request("PUT", url, **kwargs)


def patch(url: str, **kwargs) -> Response:
    return request("PATCH", url, **kwargs)


def delete(url: str, **kwargs) -> Response:
    return request("DELETE", url, **kwargs)
