"""Helpers for the emulator tests: hand-signed requests over real sockets.

The emulator is tested on its own, below the client: these helpers sign with
``aioedge._signing`` and send with aiohttp, so a test can bend any part of a request
(nonce, timestamp, method, secret, unknown parameters).  No tests live here.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from aioedge._catalog import OPERATIONS, get_operation, validate_params
from aioedge._protocol import common_params, encode_form
from aioedge._signing import sign
from aioedge.testing import Emulator

_nonces = itertools.count(1)


def fresh_nonce() -> str:
    return f"nonce-{time.monotonic_ns()}-{next(_nonces)}"


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: dict[str, Any]
    params: dict[str, str]

    @property
    def code(self) -> str | None:
        code = self.body.get("Code")
        return None if code is None else str(code)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.body.get("Success") is True


class Raw:
    """Signs and sends requests to one emulator."""

    def __init__(self, emu: Emulator, session: aiohttp.ClientSession) -> None:
        self.emu = emu
        self.session = session

    def signed(
        self,
        action: str,
        params: Mapping[str, Any] | None = None,
        *,
        method: str = "POST",
        sign_method: str | None = None,
        nonce: str | None = None,
        timestamp: float | None = None,
        key_id: str | None = None,
        secret: str | None = None,
        token: str | None = None,
        validate: bool = True,
        common: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Common parameters + business parameters + Signature, as the wire carries them."""
        creds = self.emu.credentials
        if validate:
            wire = validate_params(get_operation(action), params or {})
        else:
            wire = {k: str(v) for k, v in (params or {}).items()}
        out = common_params(
            action=action,
            access_key_id=key_id or creds.access_key_id,
            region_id="cn-shanghai",
            timestamp=time.time() if timestamp is None else timestamp,
            nonce=nonce or fresh_nonce(),
            security_token=token,
        )
        out.update(common or {})
        out.update(wire)
        out["Signature"] = sign(sign_method or method, out, secret or creds.access_key_secret)
        return out

    async def send(self, params: Mapping[str, str], *, method: str = "POST") -> Answer:
        url = self.emu.endpoint + "/"
        if method == "POST":
            kwargs: dict[str, Any] = {
                "data": encode_form(params),
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            }
        else:
            url += "?" + encode_form(params).decode("ascii")
            kwargs = {}
        async with self.session.request(method, url, **kwargs) as resp:
            raw = await resp.read()
            return Answer(resp.status, dict(resp.headers), json.loads(raw), dict(params))

    async def call(
        self, action: str, params: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Answer:
        method = kwargs.get("method", "POST")
        return await self.send(self.signed(action, params, **kwargs), method=method)

    async def ok(self, action: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        answer = await self.call(action, params)
        assert answer.ok, (action, answer.status, answer.body)
        return answer.body

    async def fail(self, action: str, params: Mapping[str, Any] | None = None) -> str:
        """Assert a business failure (HTTP 200, Success false) and return its Code."""
        answer = await self.call(action, params)
        assert answer.status == 200 and answer.body.get("Success") is False, answer.body
        assert answer.body["ErrorMessage"], answer.body
        return str(answer.body["Code"])


def keys_match_spec(body: dict[str, Any], action: str) -> None:
    """Every key of the answer is one the spec documents (table or sample)."""
    op = OPERATIONS[action]
    documented = {f["path"] for f in op.response_fields}
    documented |= {"RequestId", "Code", "Success", "ErrorMessage"}

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                path = f"{prefix}.{key}" if prefix else key
                assert path in documented, f"{action}: undocumented field {path}"
                walk(sub, path)
        elif isinstance(value, list):
            for item in value:
                walk(item, prefix + "[]")

    walk(body, "")
