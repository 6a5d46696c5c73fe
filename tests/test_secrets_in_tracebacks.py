"""No secret in the frame locals of an aioedge error's traceback.

Error trackers (Sentry's defaults) and structlog's ``ExceptionDictTransformer`` record the
locals of every frame of a traceback, chained causes included.  Rendered exactly as
``traceback.TracebackException(..., capture_locals=True)`` does, an aioedge error must show
neither the SecurityToken nor the AccessKeySecret, in any of their encoded forms: not for
SignatureDoesNotMatch (the service quotes the token in its string-to-sign), not for a
transport error (aiohttp's frames hold the signed POST body, or the GET URL).
"""

from __future__ import annotations

import socket
import traceback
from collections.abc import Awaitable
from typing import Any

import pytest

from aioedge import (
    AuthError,
    Credentials,
    EdgeClient,
    EdgeError,
    LocalRateLimiter,
    TransportError,
)
from aioedge._signing import percent_encode
from aioedge.testing import Emulator, FaultSpec

# Characters percent-encoding changes, so the three forms of each differ.
TOKEN = "CAIS+sts/token=frame-locals"
SECRET = "sts+secret/of=the-key"
WRONG_SECRET = "wrong+secret/for=the-key"


def _forms(secret: str) -> list[str]:
    once = percent_encode(secret)
    return [secret, once, percent_encode(once)]


SECRETS = [*_forms(TOKEN), *_forms(SECRET), *_forms(WRONG_SECRET)]


async def _error(call: Awaitable[Any]) -> EdgeError:
    try:
        await call
    except EdgeError as err:
        return err
    raise AssertionError("the call did not fail")


def _rendered(err: BaseException) -> str:
    te = traceback.TracebackException(type(err), err, err.__traceback__, capture_locals=True)
    return "".join(te.format())


def _assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, (secret, text[max(0, text.find(secret) - 600) :][:1200])


def _client(endpoint: str, secret: str, **kw: Any) -> EdgeClient:
    creds = Credentials("STS.frames", secret, security_token=TOKEN)
    kw.setdefault("rate_limit", LocalRateLimiter())
    return EdgeClient(credentials=creds, endpoint=endpoint, **kw)


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_signature_does_not_match_with_an_sts_key(method: str) -> None:
    async with (
        Emulator(quotas=False, credentials=("STS.frames", SECRET, TOKEN)) as emu,
        _client(emu.endpoint, WRONG_SECRET, method=method, retry=None) as client,
    ):
        err = await _error(client.call("QueryEdgeInstance", {}))
    assert isinstance(err, AuthError) and err.code == "SignatureDoesNotMatch"
    text = _rendered(err)
    assert "body = " in text and "_attempt" in text  # the frames and their locals are there
    assert "SecurityToken%3D***" in text  # the string-to-sign, masked
    _assert_no_secret(text)


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_transport_error_after_sending(method: str) -> None:
    async with Emulator(quotas=False, credentials=("STS.frames", SECRET, TOKEN)) as emu:
        emu.set_faults([FaultSpec(kind="delay", action="GetEdgeInstance", delay=5.0)])
        async with _client(emu.endpoint, SECRET, method=method, retry=None, timeout=0.3) as c:
            err = await _error(c.get_edge_instance(instance_id="i-frames"))
    assert isinstance(err, TransportError) and err.maybe_executed
    text = _rendered(err)
    assert "request = PreparedRequest(" in text  # its repr hides the signed parameters
    _assert_no_secret(text)
    # aiohttp's error is not chained (its frames hold the request); it is summarised.
    assert err.__cause__ is None and err.__context__ is None
    assert err.cause is not None and "Timeout" in err.cause


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_connection_refused(method: str) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with _client(f"http://127.0.0.1:{port}", SECRET, method=method, retry=None) as c:
        err = await _error(c.get_edge_instance(instance_id="i-frames"))
    assert isinstance(err, TransportError) and not err.maybe_executed
    _assert_no_secret(_rendered(err))
    assert err.__cause__ is None and err.__context__ is None
    assert err.cause is not None and "ClientConnectorError" in err.cause
