"""What an action or a flow returns: JSON or bytes, with the HTTP shape of a
synchronous response (status, headers, content type) and the branch to follow."""

from __future__ import annotations

import json
from typing import Any, Optional

from .schema import json_default


class Output:
    """`Output.json(value, status=201, headers={...}, branch="found")` or
    `Output.bytes(csv, "text/csv")`. A handler may also return any JSON value."""

    def __init__(self, *, json_text: Optional[str] = None, data: Optional[bytes] = None,
                 content_type: Optional[str] = None, status: Optional[int] = None,
                 headers=None, branch: Optional[str] = None):
        self.json_text = json_text
        self.data = data
        self.content_type = content_type
        self.status = status
        self.headers = list((headers or {}).items()) if isinstance(headers, dict) \
            else list(headers or [])
        self.branch = branch

    @classmethod
    def json(cls, value: Any, **kwargs) -> "Output":
        return cls(json_text=dumps(value), **kwargs)

    @classmethod
    def bytes(cls, data: bytes, content_type: str, **kwargs) -> "Output":
        return cls(data=bytes(data), content_type=content_type, **kwargs)

    def value(self) -> Any:
        """The JSON value (None for bytes)."""
        return None if self.json_text is None else json.loads(self.json_text)

    def __repr__(self) -> str:
        body = self.json_text if self.json_text is not None else f"<{len(self.data or b'')} bytes>"
        return f"Output({body}, status={self.status}, branch={self.branch})"


def dumps(value: Any) -> str:
    return json.dumps(value, default=json_default, separators=(",", ":"), ensure_ascii=False)


def to_wit(value: Any):
    """A handler's return value as the WIT `output` record."""
    from . import _wit

    t = _wit.types()
    out = value if isinstance(value, Output) else Output.json(value)
    data = t.Data_Json(out.json_text) if out.data is None else t.Data_Bytes(out.data)
    return t.Output(data=data, content_type=out.content_type, status=out.status,
                    headers=[(str(k), str(v)) for k, v in out.headers], branch=out.branch)


def from_wit(raw) -> Output:
    """The WIT `output` record (a callee's result) as an `Output`."""
    data = raw.data
    if type(data).__name__ == "Data_Json":
        return Output(json_text=data.value, content_type=raw.content_type, status=raw.status,
                      headers=list(raw.headers), branch=raw.branch)
    return Output(data=bytes(data.value), content_type=raw.content_type, status=raw.status,
                  headers=list(raw.headers), branch=raw.branch)
