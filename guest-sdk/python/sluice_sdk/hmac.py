"""HMAC-SHA256 webhook signatures, compared in constant time (`hmac.compare_digest`).

GitHub: `X-Hub-Signature-256: sha256=<hex>` over the raw body.
Zendesk: base64 of HMAC(secret, timestamp + body), in `X-Zendesk-Webhook-Signature`.
The `sign_*` functions produce the same values, for tests and fake services.
"""

from __future__ import annotations

import base64
import hashlib
import hmac as _hmac


def _mac(secret, message: bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    return _hmac.new(key, message, hashlib.sha256).digest()


def _bytes(body) -> bytes:
    return body.encode() if isinstance(body, str) else bytes(body)


def sign_github(secret, body) -> str:
    return "sha256=" + _mac(secret, _bytes(body)).hex()


def verify_github_signature(secret, body, header) -> bool:
    if not header:
        return False
    return _hmac.compare_digest(sign_github(secret, body).encode(), header.strip().encode())


def sign_zendesk(secret, timestamp: str, body) -> str:
    return base64.b64encode(_mac(secret, timestamp.encode() + _bytes(body))).decode()


def verify_zendesk_signature(secret, timestamp, body, signature) -> bool:
    if not timestamp or not signature:
        return False
    expected = sign_zendesk(secret, timestamp, body)
    return _hmac.compare_digest(expected.encode(), signature.strip().encode())


def hmac_sha256(secret, message) -> bytes:
    """The raw HMAC-SHA256 of `message`, for other signature schemes."""
    return _mac(secret, _bytes(message))


compare_digest = _hmac.compare_digest
