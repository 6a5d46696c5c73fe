"""Quotas: a strict per-AccessKeyId, per-Action sliding window (ERRATA: Quotas)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp
import pytest

from aioedge import EdgeClient, ThrottledError
from aioedge._catalog import OPERATIONS
from aioedge.testing import Emulator, FakeClock, RequestRecord
from aioedge.testing._quota import SlidingWindow

from .test_emulator_support import Answer, Raw


def _max_in_any_window(times: Sequence[float], window: float = 1.0) -> int:
    """The most arrival times inside any half-open interval [t, t + window)."""
    ordered = sorted(times)
    best = 0
    j = 0
    for i, start in enumerate(ordered):
        j = max(j, i)
        while j < len(ordered) and ordered[j] < start + window:
            j += 1
        best = max(best, j - i)
    return best


def _is_throttle(answer: Answer) -> bool:
    return (answer.status, answer.code) in (
        (400, "Throttling.User"),
        (200, "iot.common.HighFrequentDeny"),
    )


def test_the_window_helper_counts_half_open_intervals() -> None:
    assert _max_in_any_window([0.0, 0.5, 0.99, 1.0, 1.5]) == 3
    assert _max_in_any_window([0.0, 1.0, 2.0]) == 1
    assert _max_in_any_window([]) == 0


def test_sliding_window_arithmetic() -> None:
    w = SlidingWindow(1.0)
    assert [w.try_acquire("k", "A", 2, t) for t in (0.0, 0.1, 0.2)] == [True, True, False]
    assert w.try_acquire("k", "A", 2, 0.999) is False
    assert w.try_acquire("k", "A", 2, 1.0) is True  # 0.0 has left [0.0, 1.0)
    assert w.try_acquire("k", "A", 2, 1.05) is False  # 0.1 and 1.0 are inside
    assert w.try_acquire("k", "A", 2, 1.1) is True
    assert w.try_acquire("other-key", "A", 2, 1.1) is True
    assert w.try_acquire("k", "B", 2, 1.1) is True


async def test_a_concurrent_burst_never_exceeds_the_quota_in_any_second() -> None:
    async with Emulator() as emu, aiohttp.ClientSession() as session:
        raw = Raw(emu, session)
        limit = OPERATIONS["GetEdgeInstance"].qps
        assert limit == 10
        answers = await asyncio.gather(
            *(raw.call("GetEdgeInstance", {"InstanceId": f"i{n}"}) for n in range(35))
        )
        records = [r for r in emu.requests if r.action == "GetEdgeInstance"]
        accepted = [r for r in records if r.quota_accepted]
        throttled = [r for r in records if r.outcome == "throttled"]
        assert len(records) == 35
        assert 1 <= len(accepted) <= 35 and throttled
        assert _max_in_any_window([r.arrival for r in accepted]) <= limit
        # A throttled request was not executed: its nonce never reached the backend.
        executed_nonces = {e.nonce for e in emu.executions}
        assert executed_nonces == {r.nonce for r in accepted}
        assert not executed_nonces & {r.nonce for r in throttled}
        # Both of the service's throttling answers occur.
        throttle_answers = [a for a in answers if _is_throttle(a)]
        assert len(throttle_answers) == len(throttled)
        assert {a.code for a in throttle_answers} == {
            "Throttling.User",
            "iot.common.HighFrequentDeny",
        }
        http_form = next(a for a in throttle_answers if a.status == 400)
        assert set(http_form.body) >= {"RequestId", "Code", "Message"}
        stats = emu.stats()["GetEdgeInstance"]
        assert stats["throttled"] == len(throttled)
        assert stats["executed"] == len(accepted)


async def test_the_window_slides_with_the_quota_clock() -> None:
    quota_clock = FakeClock(0.0)
    async with (
        Emulator(quota_clock=quota_clock, throttle_style="http") as emu,
        aiohttp.ClientSession() as session,
    ):
        raw = Raw(emu, session)

        async def burst(n: int) -> list[bool]:
            return [
                (await raw.call("DeleteEdgeInstance", {"InstanceId": "x"})).code
                != "Throttling.User"
                for _ in range(n)
            ]

        assert await burst(6) == [True] * 5 + [False]  # DeleteEdgeInstance: 5 QPS
        quota_clock.advance(0.999)
        assert await burst(1) == [False]
        quota_clock.advance(0.001)  # the first five arrivals leave the window together
        assert await burst(6) == [True] * 5 + [False]
        accepted = [r.arrival for r in emu.requests if r.quota_accepted]
        assert accepted == [0.0] * 5 + [1.0] * 5


async def test_quotas_are_per_access_key_and_per_action() -> None:
    quota_clock = FakeClock(0.0)
    async with (
        Emulator(quota_clock=quota_clock, access_keys={"K2": "s2"}) as emu,
        aiohttp.ClientSession() as session,
    ):
        raw = Raw(emu, session)
        for _ in range(5):
            assert (
                await raw.call("DeleteEdgeInstance", {"InstanceId": "x"})
            ).code != "Throttling.User"
        assert _is_throttle(await raw.call("DeleteEdgeInstance", {"InstanceId": "x"}))
        other_action = await raw.call("UpdateEdgeInstance", {"InstanceId": "x", "Name": "n"})
        assert other_action.code == "iot.edge.InstanceNotExist"
        other_key = await raw.call(
            "DeleteEdgeInstance", {"InstanceId": "x"}, key_id="K2", secret="s2"
        )
        assert other_key.code == "iot.edge.InstanceNotExist"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"quota_scale": 0.4}, 2),  # 5 QPS x 0.4
        ({"quota_scale": 2.0}, 10),
        ({"quotas": False}, 25),
    ],
)
async def test_quota_scale_and_off_switch(options: dict[str, object], expected: int) -> None:
    quota_clock = FakeClock(0.0)
    async with (
        Emulator(quota_clock=quota_clock, **options) as emu,
        aiohttp.ClientSession() as session,
    ):
        raw = Raw(emu, session)
        answers = [await raw.call("DeleteEdgeInstance", {"InstanceId": "x"}) for _ in range(25)]
        assert sum(not _is_throttle(a) for a in answers) == expected
        assert emu.stats()["DeleteEdgeInstance"]["executed"] == expected


@pytest.mark.parametrize(
    ("style", "codes"),
    [
        ("http", {(400, "Throttling.User")}),
        ("business", {(200, "iot.common.HighFrequentDeny")}),
        ("alternate", {(400, "Throttling.User"), (200, "iot.common.HighFrequentDeny")}),
        ("random", {(400, "Throttling.User"), (200, "iot.common.HighFrequentDeny")}),
    ],
)
async def test_throttle_styles(style: str, codes: set[tuple[int, str]]) -> None:
    quota_clock = FakeClock(0.0)
    async with (
        Emulator(quota_clock=quota_clock, throttle_style=style, seed=7) as emu,
        aiohttp.ClientSession() as session,
    ):
        raw = Raw(emu, session)
        answers = [await raw.call("DeleteEdgeInstance", {"InstanceId": "x"}) for _ in range(25)]
        seen = {(a.status, a.code) for a in answers if _is_throttle(a)}
        assert seen == codes
        business = [a for a in answers if a.code == "iot.common.HighFrequentDeny"]
        assert all(a.body["Success"] is False and a.body["ErrorMessage"] for a in business)


@pytest.mark.parametrize("style", ["business", "alternate", "random"])
async def test_query_device_provisioning_is_throttled_in_its_own_error_shape(style: str) -> None:
    # Its page documents HTTP 400 {Code, Message} for the iot.common.* codes, so the
    # business form of throttling is answered that way too, never HTTP 200 Success false.
    quota_clock = FakeClock(0.0)
    options = {"quota_clock": quota_clock, "quota_scale": 0.02, "throttle_style": style}
    async with Emulator(seed=3, **options) as emu, aiohttp.ClientSession() as session:
        raw = Raw(emu, session)
        params = {"ProductKey": "pk", "DeviceName": "d"}
        assert (await raw.call("QueryDeviceProvisioning", params)).body["Success"] is True
        throttled = [await raw.call("QueryDeviceProvisioning", params) for _ in range(8)]
        assert {(a.status, a.code) for a in throttled} <= {
            (400, "Throttling.User"),
            (400, "iot.common.HighFrequentDeny"),
        }
        business = [a for a in throttled if a.code == "iot.common.HighFrequentDeny"]
        assert business
        assert all(set(a.body) == {"RequestId", "Code", "Message"} for a in business)
        assert all(a.body["Message"] for a in business)
        assert emu.stats()["QueryDeviceProvisioning"]["throttled"] == 8
        assert len(emu.executions) == 1
        # The client takes it for throttling, not for a parameter or a generic error.
        async with EdgeClient(
            credentials=emu.credentials,
            endpoint=emu.endpoint,
            rate_limit=False,
            retry=None,
            quota_scope=emu.endpoint,
        ) as client:
            errors: list[ThrottledError] = []
            for _ in range(4):
                with pytest.raises(ThrottledError) as caught:
                    await client.query_device_provisioning(product_key="pk", device_name="d")
                errors.append(caught.value)
        if style == "business":
            assert {(e.http_status, e.code) for e in errors} == {
                (400, "iot.common.HighFrequentDeny")
            }
        assert len(emu.executions) == 1


async def test_a_request_missing_a_required_parameter_does_not_use_the_quota() -> None:
    # The gateway refuses it before the quota: DeleteEdgeInstance's 5 QPS stay whole.
    quota_clock = FakeClock(0.0)
    async with (
        Emulator(quota_clock=quota_clock, throttle_style="http") as emu,
        aiohttp.ClientSession() as session,
    ):
        raw = Raw(emu, session)
        incomplete: list[dict[str, str]] = [
            {},
            {"InstanceId": ""},
            {"Colour": "blue"},  # an unknown parameter does not hide the missing one
        ]
        for n in range(8):
            answer = await raw.call(
                "DeleteEdgeInstance", incomplete[n % len(incomplete)], validate=False
            )
            assert (answer.status, answer.code) == (400, "MissingInstanceId"), answer.body
        answers = [await raw.call("DeleteEdgeInstance", {"InstanceId": "x"}) for _ in range(6)]
        assert [a.code for a in answers] == ["iot.edge.InstanceNotExist"] * 5 + ["Throttling.User"]
        # Still the gateway's answer, not throttling, once the quota is used up.
        late = await raw.call("DeleteEdgeInstance", {}, validate=False)
        assert (late.status, late.code) == (400, "MissingInstanceId")
        outcomes = [r.outcome for r in emu.requests]
        assert outcomes == ["rejected"] * 8 + ["executed"] * 5 + ["throttled", "rejected"]
        assert not any(r.quota_accepted for r in emu.requests if r.outcome == "rejected")
        stats = emu.stats()["DeleteEdgeInstance"]
        assert (stats["rejected"], stats["invalid"], stats["throttled"]) == (9, 0, 1)


async def test_other_parameter_errors_count_against_the_quota() -> None:
    quota_clock = FakeClock(0.0)
    async with (
        Emulator(quota_clock=quota_clock, throttle_style="http") as emu,
        aiohttp.ClientSession() as session,
    ):
        raw = Raw(emu, session)
        bad = {"InstanceId": "x", "Colour": "blue"}
        codes = [(await raw.call("DeleteEdgeInstance", bad, validate=False)).code for _ in range(6)]
        assert codes == ["iot.common.InvalidParam"] * 5 + ["Throttling.User"]


def test_an_unknown_throttle_style_is_refused() -> None:
    with pytest.raises(ValueError, match="throttle_style"):
        Emulator(throttle_style="polite")


def test_request_records_say_whether_the_quota_accepted_them() -> None:
    def rec(outcome: str) -> RequestRecord:
        return RequestRecord(
            action="A", access_key_id="k", arrival=0.0, outcome=outcome, nonce="n", request_id="r"
        )

    assert [rec(o).quota_accepted for o in ("executed", "invalid", "throttled", "rejected")] == [
        True,
        True,
        False,
        False,
    ]
