"""EdgeClient over real sockets against a scriptable local server (transport corners)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from email.utils import formatdate
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

import aioedge
from aioedge import (
    ApiError,
    EdgeClient,
    NotFoundError,
    RetryPolicy,
    ThrottledError,
    TransportError,
    ValidationError,
)
from aioedge._signing import sign
from aioedge.watch._deploy import history_pages

from .support import TEST_CREDS, ScriptServer, ok_body

FAST = RetryPolicy(
    max_attempts=3, base_delay=0.0, max_delay=0.0, throttle_base_delay=0.0, throttle_min_delay=0.0
)


def make(srv: ScriptServer, **kw: Any) -> EdgeClient:
    kw.setdefault("retry", FAST)
    kw.setdefault("rate_limit", False)
    return EdgeClient(credentials=TEST_CREDS, endpoint=srv.endpoint, **kw)


async def test_call_signs_and_returns_body(script_server: ScriptServer) -> None:
    script_server.default = ok_body(Data={"InstanceId": "F3AP"})
    async with make(script_server, region_id="cn-beijing") as client:
        body = await client.call("GetEdgeInstance", {"InstanceId": "F3AP"})
    assert body["Data"]["InstanceId"] == "F3AP"
    sent = dict(script_server.params())
    signature = sent.pop("Signature")
    assert signature == sign("POST", sent, TEST_CREDS.access_key_secret)
    assert sent["RegionId"] == "cn-beijing" and sent["AccessKeyId"] == "test-akid"
    assert sent["Version"] == "2018-01-20" and sent["Format"] == "JSON"


def test_nonce_is_uuid4_and_ignores_the_random_module_seed() -> None:
    import os
    import random
    import uuid

    from aioedge._client import _random_nonce

    nonce = _random_nonce()
    parsed = uuid.UUID(nonce)
    assert str(parsed) == nonce and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # Two processes that seed `random` alike must still send different nonces.
    random.seed(1234)
    first = _random_nonce()
    random.seed(1234)
    assert _random_nonce() != first
    # A forked child does not repeat its parent's sequence.
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write_fd, _random_nonce().encode())
        os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    child = os.read(read_fd, 64).decode()
    os.close(read_fd)
    assert uuid.UUID(child).version == 4 and child != _random_nonce()


async def test_sequential_calls_reuse_one_connection(script_server: ScriptServer) -> None:
    async with make(script_server) as client:
        for _ in range(5):
            await client.call("GetEdgeInstance", {"InstanceId": "x"})
        session = client.session
    assert len(script_server.requests) == 5
    assert len(script_server.connections) == 1
    assert session is not None and session.closed


async def test_fresh_nonce_and_timestamp_each_attempt(script_server: ScriptServer) -> None:
    script_server.answers = [
        (503, {"Code": "ServiceUnavailable", "Message": "x", "RequestId": "R"})
    ]
    async with make(script_server) as client:
        await client.call("GetEdgeInstance", {"InstanceId": "x"})
    nonces = [r.params["SignatureNonce"] for r in script_server.requests]
    assert len(nonces) == 2 and len(set(nonces)) == 2


async def test_rejected_call_sends_nothing(script_server: ScriptServer) -> None:
    async with make(script_server) as client:
        with pytest.raises(ValidationError) as info:
            await client.call(
                "BatchBindDeviceToEdgeInstanceWithDriver",
                {"InstanceId": "i", "DriverId": "d", "IotIds": ["x"] * 21},
            )
        assert info.value.param == "IotIds" and info.value.rule == "max_items"
        with pytest.raises(ValidationError):
            await client.call("NoSuchAction", {})
    assert script_server.requests == []


async def test_default_iot_instance_id(script_server: ScriptServer) -> None:
    async with make(script_server, iot_instance_id="iot-123") as client:
        await client.call("GetEdgeInstance", {"InstanceId": "x"})
        assert script_server.params()["IotInstanceId"] == "iot-123"
        await client.call("GetEdgeInstance", {"InstanceId": "x", "IotInstanceId": "iot-other"})
        assert script_server.params()["IotInstanceId"] == "iot-other"
        await client.call("QueryDeviceProvisioning", {"ProductKey": "pk", "DeviceName": "dn"})
        assert "IotInstanceId" not in script_server.params()  # not a parameter of it


@pytest.mark.parametrize(
    ("action", "params", "param"),
    [
        ("GetEdgeInstance", {"InstanceId": "\udcff"}, "InstanceId"),
        ("CreateEdgeInstance", {"Name": "n", "Tags": "k:v\ud800"}, "Tags"),
        ("BatchGetEdgeDriver", {"DriverIds": ["d1", "d2\udcff"]}, "DriverIds.2"),
        (
            "BatchSetEdgeInstanceDeviceConfig",
            {"InstanceId": "i", "DeviceConfigs": [{"IotId": "d", "Content": "\udcff"}]},
            "DeviceConfigs.1.Content",
        ),
    ],
)
async def test_text_utf8_cannot_encode_is_refused_before_signing(
    script_server: ScriptServer, action: str, params: dict[str, Any], param: str
) -> None:
    async with make(script_server) as client:
        with pytest.raises(ValidationError) as info:
            await client.call(action, params)
    assert (info.value.param, info.value.rule) == (param, "encoding")
    assert script_server.requests == []


async def test_iot_instance_id_none_means_the_default_and_empty_is_refused(
    script_server: ScriptServer,
) -> None:
    async with make(script_server, iot_instance_id="iot-123") as client:
        await client.call("GetEdgeInstance", {"InstanceId": "x", "IotInstanceId": None})
        assert script_server.params()["IotInstanceId"] == "iot-123"
        await client.get_edge_instance(instance_id="x", iot_instance_id=None)
        assert script_server.params()["IotInstanceId"] == "iot-123"
        sent = len(script_server.requests)
        with pytest.raises(ValidationError) as info:
            await client.call("GetEdgeInstance", {"InstanceId": "x", "IotInstanceId": ""})
        assert (info.value.param, info.value.rule) == ("IotInstanceId", "min_length")
        with pytest.raises(ValidationError) as info:
            await client.get_edge_instance(instance_id="x", iot_instance_id="")
        assert info.value.param == "IotInstanceId"
    assert len(script_server.requests) == sent  # refused before any I/O


async def test_security_token_sent(script_server: ScriptServer) -> None:
    creds = aioedge.Credentials("AK", "SK", security_token="sts-tok")
    async with EdgeClient(
        credentials=creds, endpoint=script_server.endpoint, rate_limit=False
    ) as client:
        await client.call("GetEdgeInstance", {"InstanceId": "x"})
    assert script_server.params()["SecurityToken"] == "sts-tok"


async def test_service_error_keeps_code_and_request_id(script_server: ScriptServer) -> None:
    script_server.default = {
        "Success": False,
        "Code": "iot.edge.InstanceNotExist",
        "ErrorMessage": "no such",
        "RequestId": "RID-9",
    }
    async with make(script_server) as client:
        with pytest.raises(NotFoundError) as info:
            await client.call("GetEdgeInstance", {"InstanceId": "x"})
    assert info.value.request_id == "RID-9" and info.value.code == "iot.edge.InstanceNotExist"
    assert len(script_server.requests) == 1  # not retried


async def test_clock_skew_is_corrected_from_date_header(script_server: ScriptServer) -> None:
    server_now = 1_900_000_000.0

    def skewed(request: web.Request) -> web.Response:
        return web.json_response(
            {"Code": "InvalidTimeStamp.Expired", "Message": "skewed", "RequestId": "R"},
            status=400,
            headers={"Date": formatdate(server_now, usegmt=True)},
        )

    script_server.answers = [skewed]
    async with make(script_server, clock=lambda: 1_000_000_000.0) as client:
        await client.call("CreateEdgeInstance", {"Name": "n1"})  # mutating: still retried once
    first, second = script_server.requests
    assert first.params["Timestamp"].startswith("2001-09-09")
    assert second.params["Timestamp"] == "2030-03-17T17:46:40Z"


async def test_throttled_then_ok_is_retried(script_server: ScriptServer) -> None:
    script_server.answers = [
        (400, {"Code": "Throttling.User", "Message": "x", "RequestId": "R1"}),
        {
            "Success": False,
            "Code": "iot.common.HighFrequentDeny",
            "ErrorMessage": "x",
            "RequestId": "R2",
        },
    ]
    async with make(script_server) as client:
        body = await client.call("DeleteEdgeInstance", {"InstanceId": "x"})
    assert body["Success"] is True and len(script_server.requests) == 3


async def test_throttled_exhausted_raises_with_attempts(script_server: ScriptServer) -> None:
    script_server.default = (400, {"Code": "Throttling.User", "Message": "x", "RequestId": "R"})
    async with make(script_server) as client:
        with pytest.raises(ThrottledError) as info:
            await client.call("GetEdgeInstance", {"InstanceId": "x"})
    assert info.value.attempts == 3 and len(script_server.requests) == 3


async def _hang(request: web.Request) -> web.Response:
    await asyncio.sleep(1.0)
    return web.json_response(ok_body())


async def test_timeout_on_mutating_call_is_not_repeated(script_server: ScriptServer) -> None:
    script_server.default = _hang
    async with make(script_server, timeout=0.2) as client:
        with pytest.raises(TransportError) as info:
            await client.call("CreateEdgeInstanceDeployment", {"InstanceId": "i", "Type": "deploy"})
    assert info.value.maybe_executed is True
    assert len(script_server.requests) == 1


async def test_timeout_on_read_is_retried(script_server: ScriptServer) -> None:
    script_server.answers = [_hang]
    async with make(script_server, timeout=0.2) as client:
        body = await client.call("GetEdgeInstance", {"InstanceId": "x"})
    assert body["Success"] is True and len(script_server.requests) == 2


async def test_connection_refused_is_not_executed_and_retried() -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    async with EdgeClient(
        credentials=TEST_CREDS, endpoint=f"http://127.0.0.1:{port}", rate_limit=False, retry=FAST
    ) as client:
        with pytest.raises(TransportError) as info:
            await client.call("CreateEdgeInstance", {"Name": "n"})
    assert info.value.maybe_executed is False
    assert info.value.attempts == 3


async def test_non_json_body_is_typed(script_server: ScriptServer) -> None:
    script_server.default = lambda r: web.Response(status=200, text='{"Success": tr')
    async with make(script_server, retry=None) as client:
        with pytest.raises(aioedge.InvalidResponseError) as info:
            await client.call("CreateEdgeInstance", {"Name": "n"})
    assert info.value.http_status == 200 and "Success" in str(info.value)


async def test_paginate_walks_all_pages(script_server: ScriptServer) -> None:
    items = [{"InstanceId": f"i{n}"} for n in range(7)]

    def page(request: web.Request) -> Any:
        return None

    def answer(req: web.Request) -> web.Response:
        p = script_server.params()
        cur, size = int(p["CurrentPage"]), int(p["PageSize"])
        chunk = items[(cur - 1) * size : cur * size]
        return web.json_response(
            ok_body(Data={"Total": 7, "PageSize": size, "CurrentPage": cur, "InstanceList": chunk})
        )

    script_server.default = answer
    async with make(script_server) as client:
        got = [i["InstanceId"] async for i in client.paginate("QueryEdgeInstance", {"PageSize": 3})]
        assert got == [f"i{n}" for n in range(7)]
        assert [r.params["CurrentPage"] for r in script_server.requests] == ["1", "2", "3"]
        with pytest.raises(ValidationError, match="not a paged"):
            async for _ in client.paginate("GetEdgeInstance", {"InstanceId": "x"}):
                pass


async def test_caller_session_is_not_closed(script_server: ScriptServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with make(script_server, session=session) as client:
            await client.call("GetEdgeInstance", {"InstanceId": "x"})
        assert not session.closed


async def test_caller_session_still_gets_the_clients_timeout(script_server: ScriptServer) -> None:
    # aiohttp's own default (300 s) must not replace the client's per-attempt timeout.
    script_server.default = _hang
    async with aiohttp.ClientSession() as session:
        client = make(script_server, session=session, timeout=0.2, retry=None)
        async with client:
            with pytest.raises(TransportError, match="timed out"):
                await client.call("GetEdgeInstance", {"InstanceId": "x"})


async def test_closed_client_refuses_calls_and_opens_nothing(script_server: ScriptServer) -> None:
    client = make(script_server)
    async with client:
        await client.call("GetEdgeInstance", {"InstanceId": "x"})
    with pytest.raises(TransportError, match="closed") as info:
        await client.call("GetEdgeInstance", {"InstanceId": "x"})
    assert info.value.maybe_executed is False
    assert client.session is None and len(script_server.requests) == 1


def test_bad_config_is_rejected_before_io() -> None:
    with pytest.raises(ValidationError, match="region_id"):
        EdgeClient(credentials=TEST_CREDS, region_id="Shanghai!")
    with pytest.raises(ValidationError, match="https"):
        EdgeClient(credentials=TEST_CREDS, endpoint="http://iot.example.com")
    with pytest.raises(ValidationError, match="timeout"):
        EdgeClient(credentials=TEST_CREDS, timeout=0)
    for bad in (float("nan"), True, "10"):  # NaN passed '<= 0'; a bool is not a time
        with pytest.raises(ValidationError) as info:
            EdgeClient(credentials=TEST_CREDS, timeout=bad)  # type: ignore[arg-type]
        assert info.value.param == "timeout"
    c = EdgeClient(credentials=TEST_CREDS, region_id="ap-southeast-1")
    assert c.endpoint == "https://iot.ap-southeast-1.aliyuncs.com"


async def test_the_request_log_quotes_a_numeric_request_id_as_text(
    script_server: ScriptServer, caplog: pytest.LogCaptureFixture
) -> None:
    # As errors, models, hooks and batch results read it: the id to quote, as text.
    script_server.answers = [{"RequestId": 12345, "Success": True, "Code": "Success"}]
    with caplog.at_level(logging.DEBUG, logger="aioedge"):
        async with EdgeClient(
            credentials=TEST_CREDS, endpoint=script_server.endpoint, rate_limit=False
        ) as client:
            await client.call("GetEdgeInstance", {"InstanceId": "x"})
    (sent,) = [r for r in caplog.records if "aioedge.request_sent" in r.getMessage()]
    assert "request_id='12345'" in sent.getMessage()


def test_region_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_REGION_ID", "eu-central-1")
    assert EdgeClient(credentials=TEST_CREDS).region_id == "eu-central-1"
    monkeypatch.delenv("ALIBABA_CLOUD_REGION_ID")
    assert EdgeClient(credentials=TEST_CREDS).region_id == "cn-shanghai"


def test_client_repr_has_no_secret() -> None:
    creds = aioedge.Credentials("AKID", "the-secret", security_token="the-token")
    text = repr(EdgeClient(credentials=creds))
    assert "the-secret" not in text and "the-token" not in text


async def test_logs_carry_no_secrets(
    script_server: ScriptServer, caplog: pytest.LogCaptureFixture
) -> None:
    script_server.answers = [
        (503, {"Code": "ServiceUnavailable", "Message": "x", "RequestId": "R"})
    ]
    creds = aioedge.Credentials("AKID", "the-secret", security_token="the-token")
    with caplog.at_level(logging.DEBUG, logger="aioedge"):
        async with EdgeClient(
            credentials=creds, endpoint=script_server.endpoint, rate_limit=False, retry=FAST
        ) as client:
            await client.call("GetEdgeInstance", {"InstanceId": "x"})
    text = caplog.text
    assert "aioedge.request_sent" in text and "aioedge.retry_scheduled" in text
    assert "latency_ms" in text and "http_status=503" in text
    signatures = [r.params["Signature"] for r in script_server.requests]
    for secret in ["the-secret", "the-token", *signatures]:
        assert secret not in text


async def test_silent_by_default(
    script_server: ScriptServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async with make(script_server) as client:
        await client.call("GetEdgeInstance", {"InstanceId": "x"})
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


async def test_api_error_is_edge_error() -> None:
    assert issubclass(ApiError, aioedge.EdgeError)
    assert issubclass(ThrottledError, ApiError)


async def test_deadline_bounds_the_whole_call_not_only_new_retries(
    script_server: ScriptServer,
) -> None:
    # The answer comes after 1 s; the per-attempt timeout (5 s) would wait for it, but the
    # deadline (0.3 s) caps the attempt: the call gives up instead of lasting past it.
    script_server.default = _hang
    policy = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0, deadline=0.3)
    async with make(script_server, timeout=5.0, retry=policy) as client:
        with pytest.raises(TransportError, match="timed out"):
            await client.call("GetEdgeInstance", {"InstanceId": "x"})
    assert len(script_server.requests) == 1


async def test_get_method_sends_mutating_calls_as_post(script_server: ScriptServer) -> None:
    async with make(script_server, method="GET") as client:
        await client.call("GetEdgeInstance", {"InstanceId": "x"})
        await client.call("CreateEdgeInstance", {"Name": "edge1"})
    read, write = script_server.requests
    assert "application/x-www-form-urlencoded" not in read.headers.get("Content-Type", "")
    assert read.params["Action"] == "GetEdgeInstance"
    assert write.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert write.params["Action"] == "CreateEdgeInstance"
    assert write.params.pop("Signature") == sign(
        "POST", {k: v for k, v in write.params.items()}, TEST_CREDS.access_key_secret
    )


async def test_get_is_not_resent_by_the_http_stack(script_server: ScriptServer) -> None:
    # A kept-alive connection that drops without an answer: the retry policy (here: none)
    # decides, not aiohttp, which would re-send the same signed request (same nonce).
    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.json_response(ok_body())

    async with make(script_server, method="GET", retry=None) as client:
        await client.call("GetEdgeInstance", {"InstanceId": "x"})  # opens the connection
        script_server.answers = [drop]
        with pytest.raises(TransportError):
            await client.call("GetEdgeInstance", {"InstanceId": "x"})
    assert len(script_server.requests) == 2


def test_shared_limiter_holds_lost_slots_for_the_longest_client_timeout() -> None:
    from aioedge._ratelimit import default_limiter, reset_default_limiter

    reset_default_limiter()
    try:
        EdgeClient(credentials=TEST_CREDS, timeout=42.0)
        EdgeClient(credentials=TEST_CREDS, timeout=3.0)  # never lowers what another needs
        assert default_limiter().attempt_timeout == 42.0
    finally:
        reset_default_limiter()


async def test_an_infinite_override_batches_without_a_per_action_cap(
    script_server: ScriptServer,
) -> None:
    # math.inf means "no limit for this Action": no slots, and no cap of Q calls at once.
    running = peak = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.2)
        running -= 1
        return web.json_response(ok_body(Data={}))

    script_server.default = slow
    limiter = aioedge.LocalRateLimiter(overrides={"GetEdgeInstance": math.inf})
    async with make(script_server, rate_limit=limiter) as client:
        results = await client.batch([("GetEdgeInstance", {"InstanceId": "x"})] * 25)
    assert results.all_ok, results.summary()  # type: ignore[attr-defined]
    assert len(script_server.requests) == 25
    assert peak > 10  # more than GetEdgeInstance's quota of 10 in flight together


class _SlowGrant:
    """A user's limiter whose grant takes ``delay`` s and cannot be cut short; records exits."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.exits: list[BaseException | None] = []

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        with anyio.CancelScope(shield=True):
            await asyncio.sleep(self.delay)
        try:
            yield
        except BaseException as exc:
            self.exits.append(exc)
            raise
        self.exits.append(None)

    def slot(self, scope: str, action: str, qps: float) -> AbstractAsyncContextManager[None]:
        return self._slot()

    def report_throttled(self, scope: str, action: str) -> None:
        return None

    def report_success(self, scope: str, action: str) -> None:
        return None


async def test_a_grant_too_close_to_the_deadline_sends_nothing(
    script_server: ScriptServer,
) -> None:
    # 0.3 s deadline, 0.2 s kept for the attempt: the grant at 0.25 s leaves 0.05 s.
    limiter = _SlowGrant(0.25)
    policy = RetryPolicy(deadline=0.3, min_attempt_timeout=0.2)
    async with make(script_server, rate_limit=limiter, retry=policy) as client:
        with pytest.raises(aioedge.DeadlineExceededError, match="not sent") as info:
            await client.call("UpdateEdgeInstance", {"InstanceId": "i", "Name": "n"})
    assert info.value.maybe_executed is False and info.value.attempts == 1
    assert script_server.requests == []  # neither signed nor sent
    assert limiter.exits == [info.value]  # the limiter sees why: nothing was sent


async def test_the_wait_for_a_slot_ends_at_the_deadline(script_server: ScriptServer) -> None:
    limiter = aioedge.LocalRateLimiter()
    async with make(script_server, rate_limit=limiter, retry=None) as client:
        for _ in range(5):  # DeleteEdgeInstance's 5 slots: each held 1 s after its answer
            await client.call("DeleteEdgeInstance", {"InstanceId": "i"})
    policy = RetryPolicy(deadline=0.5, min_attempt_timeout=0.2)
    async with make(script_server, rate_limit=limiter, retry=policy) as client:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(aioedge.DeadlineExceededError, match="waited") as info:
            await client.call("DeleteEdgeInstance", {"InstanceId": "i"})
        assert 0.25 <= loop.time() - t0 < 0.6  # gave up 0.2 s before the deadline
    assert info.value.maybe_executed is False
    assert len(script_server.requests) == 5  # only the first five
    assert limiter.waiting(client.quota_scope, "DeleteEdgeInstance") == 0
    assert limiter.in_flight(client.quota_scope, "DeleteEdgeInstance") == 0


async def test_the_local_limiter_bounds_its_own_wait_without_a_cancel_scope(
    script_server: ScriptServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a retry deadline every attempt's wait for a slot is bounded; the local limiter
    # takes the bound itself (slot(..., wait=)), so a free slot costs no cancel scope.
    def no_scope(*_args: object) -> None:
        raise AssertionError("a cancel scope around the local limiter's slot")

    monkeypatch.setattr(aioedge._client.anyio, "move_on_after", no_scope)
    limiter = aioedge.LocalRateLimiter()
    policy = RetryPolicy(deadline=0.5, min_attempt_timeout=0.2)
    async with make(script_server, rate_limit=limiter, retry=policy) as client:
        for _ in range(5):
            await client.call("DeleteEdgeInstance", {"InstanceId": "i"})
        with pytest.raises(aioedge.DeadlineExceededError, match="waited"):
            await client.call("DeleteEdgeInstance", {"InstanceId": "i"})
    assert len(script_server.requests) == 5
    assert limiter.waiting(client.quota_scope, "DeleteEdgeInstance") == 0


class _Recording:
    """A user's limiter with the optional hooks: it records what the client tells it."""

    def __init__(self) -> None:
        self.expected: list[float] = []
        self.timeouts: list[float | None] = []

    def expect_attempt_timeout(self, seconds: float) -> None:
        self.expected.append(seconds)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        yield

    def slot(
        self, scope: str, action: str, qps: float, *, timeout: float | None = None
    ) -> AbstractAsyncContextManager[None]:
        self.timeouts.append(timeout)
        return self._slot()

    def report_throttled(self, scope: str, action: str) -> None:
        return None

    def report_success(self, scope: str, action: str) -> None:
        return None


async def test_a_limiter_passed_in_learns_the_client_timeout(script_server: ScriptServer) -> None:
    recording = _Recording()
    async with make(script_server, rate_limit=recording, timeout=7.5) as client:
        await client.call("GetEdgeInstance", {"InstanceId": "x"})
    assert recording.expected == [7.5]  # at construction, before any call
    assert recording.timeouts == [7.5]  # and with every slot
    # The local limiter holds a slot that got no answer for window + the longest such timeout.
    local = aioedge.LocalRateLimiter(attempt_timeout=10.0)
    EdgeClient(credentials=TEST_CREDS, rate_limit=local, timeout=42.0)
    EdgeClient(credentials=TEST_CREDS, rate_limit=local, timeout=3.0)
    assert local.attempt_timeout == 42.0
    # A limiter with neither hook (the three-argument Protocol) is still served.
    plain = _SlowGrant(0.0)
    async with make(script_server, rate_limit=plain) as client:
        await client.call("GetEdgeInstance", {"InstanceId": "x"})
    assert plain.exits == [None]


def test_a_limiter_that_cannot_serve_the_timeout_is_refused() -> None:
    class Refusing(_Recording):
        def expect_attempt_timeout(self, seconds: float) -> None:
            raise ValueError("lease (30 s) must exceed the timeout")

    with pytest.raises(ValidationError, match="lease") as info:
        EdgeClient(credentials=TEST_CREDS, rate_limit=Refusing(), timeout=120)
    assert (info.value.param, info.value.rule) == ("timeout", "range")


class _FullProtocol:
    """A user's limiter with the whole RateLimiter Protocol, and nothing more."""

    def __init__(self, grant: bool) -> None:
        self.grant = grant
        self.slots: list[tuple[float | None, float | None]] = []
        self.expected: list[float] = []
        self.throttled: list[str] = []

    def expect_attempt_timeout(self, seconds: float) -> None:
        self.expected.append(seconds)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if not self.grant:
            raise TimeoutError  # as the Protocol says: no slot within `wait`
        yield

    def slot(
        self,
        scope: str,
        action: str,
        qps: float,
        *,
        timeout: float | None = None,
        wait: float | None = None,
    ) -> AbstractAsyncContextManager[None]:
        self.slots.append((timeout, wait))
        return self._slot()

    def report_throttled(self, scope: str, action: str) -> None:
        self.throttled.append(action)


async def test_a_limiter_with_the_whole_protocol_is_used_as_it_is(
    script_server: ScriptServer,
) -> None:
    from aioedge._ratelimit import as_rate_limiter

    full = _FullProtocol(grant=True)
    assert isinstance(full, aioedge.RateLimiter) and as_rate_limiter(full) is full
    assert as_rate_limiter(aioedge.LocalRateLimiter()) is not None
    policy = RetryPolicy(deadline=30.0, min_attempt_timeout=1.0)
    async with make(script_server, rate_limit=full, timeout=5.0, retry=policy) as client:
        await client.call("GetEdgeInstance", {"InstanceId": "x"})  # no report_success needed
    assert full.expected == [5.0]
    ((timeout, wait),) = full.slots
    assert timeout == 5.0 and wait is not None and 28.0 < wait <= 29.0
    # Its TimeoutError on entry is the retry deadline passing: nothing is sent.
    refusing = _FullProtocol(grant=False)
    async with make(script_server, rate_limit=refusing, retry=policy) as client:
        with pytest.raises(aioedge.DeadlineExceededError, match="waited") as info:
            await client.call("UpdateEdgeInstance", {"InstanceId": "i", "Name": "n"})
    assert info.value.maybe_executed is False and len(script_server.requests) == 1
    # Without a retry deadline the wait is unbounded: wait=None.
    async with make(script_server, rate_limit=full, retry=None) as client:
        await client.call("GetEdgeInstance", {"InstanceId": "x"})
    assert full.slots[-1] == (10.0, None)


@pytest.mark.parametrize(
    ("count", "total", "asked"),
    [
        (45, None, [1, 2]),  # no Total: the short page ends it
        (60, None, [1, 2, 3]),  # no Total, full pages: the empty third page ends it
        (60, "n/a", [1, 2, 3]),  # an unreadable Total is no Total
        (60, 60, [1, 2]),  # Total reached on a full page
    ],
)
async def test_paginate_has_more_and_the_history_stop_paging_alike(
    script_server: ScriptServer, count: int, total: Any, asked: list[int]
) -> None:
    # One rule (_wire.more_pages): client.paginate, Page.has_more and the deployment
    # history reader ask for the same pages of a server that may leave out Total.
    deployments = [{"DeploymentId": f"d{n}", "Status": 2} for n in range(count)]

    def answer(req: web.Request) -> web.Response:
        p = script_server.params()
        cur, size = int(p["CurrentPage"]), int(p["PageSize"])
        data: dict[str, Any] = {
            "PageSize": size,
            "CurrentPage": cur,
            "DeploymentList": deployments[(cur - 1) * size : cur * size],
        }
        if total is not None:
            data["Total"] = total
        return web.json_response(ok_body(Data=data))

    def pages_asked() -> list[int]:
        got = [int(r.params["CurrentPage"]) for r in script_server.requests]
        assert {r.params["PageSize"] for r in script_server.requests} == {"30"}  # the largest
        script_server.requests.clear()
        return got

    script_server.default = answer
    action = "QueryEdgeInstanceHistoricDeployment"
    async with make(script_server) as client:
        walked = [d["DeploymentId"] async for d in client.paginate(action, {"InstanceId": "i"})]
        assert walked == [f"d{n}" for n in range(count)]
        assert pages_asked() == asked
        history = [page async for page in history_pages(client, "i")]
        assert sum(len(page) for page in history) == count
        assert pages_asked() == asked
        more = [
            (await client.query_edge_instance_historic_deployment(
                instance_id="i", current_page=n, page_size=30
            )).has_more
            for n in asked
        ]  # fmt: skip
        assert more == [True] * (len(asked) - 1) + [False]


async def test_a_numeric_request_id_is_kept_as_text_by_every_reader(
    script_server: ScriptServer,
) -> None:
    # One reader of a body's RequestId: the error path kept a number as text, while models,
    # hooks and batches dropped it to None.
    seen: list[str | None] = []

    class Hook:
        def on_response(self, info: Any) -> None:
            seen.append(info.request_id)

    script_server.answers = [
        ok_body(RequestId=123, Data={"InstanceId": "F3AP", "Name": "n"}),
        (400, {"RequestId": 456, "Code": "iot.edge.InstanceNotExist", "Message": "no"}),
    ]
    async with make(script_server, hooks=[Hook()]) as client:
        inst = await client.get_edge_instance(instance_id="F3AP")
        with pytest.raises(NotFoundError) as info:
            await client.get_edge_instance(instance_id="F3AP")
    assert inst.request_id == "123" and info.value.request_id == "456"
    assert seen == ["123", "456"]
