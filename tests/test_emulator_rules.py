"""Each rule of the emulated service is written once: its API gateway and its STS check a
signed request alike, every emulated endpoint answers with the emulator's clock and the
same error shapes, and the inspection endpoints name an unknown deployment alike.
Over real sockets on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest

from aioedge import Credentials
from aioedge._protocol import encode_form
from aioedge._signing import string_to_sign
from aioedge._sts import assume_role_request
from aioedge.testing import Emulator, FakeClock

from .test_emulator_support import Raw, fresh_nonce

# A plain key pair (no SecurityToken) and an STS-style one (with a SecurityToken).
_PLAIN = Credentials("LTAI5tPlainKeyId", "plain-secret")
_STS_KEY = Credentials("STS.TokenKeyId", "token-secret", security_token="CAIStoken")
_ROLE_ARN = "acs:ram::1234567890123456:role/app"


@dataclass(frozen=True)
class _Role:
    sts_endpoint: str
    role_arn: str = _ROLE_ARN
    role_session_name: str = "rules"
    duration_seconds: int = 3600
    policy: str | None = None


@pytest.fixture
async def raw() -> AsyncIterator[Raw]:
    async with (
        Emulator(quotas=False, access_keys=[_PLAIN, _STS_KEY]) as emu,
        aiohttp.ClientSession() as session,
    ):
        yield Raw(emu, session)


def _assume_role_params(emu: Emulator, source: Credentials, token: str | None) -> dict[str, str]:
    """The client's own AssumeRole request, signed with ``source`` carrying ``token``."""
    signer = Credentials(source.access_key_id, source.access_key_secret, security_token=token)
    request = assume_role_request(
        _Role(emu.sts_endpoint),
        source=signer,
        external_id=None,
        timestamp=time.time(),
        nonce=fresh_nonce(),
    )
    return dict(parse_qsl(request.body.decode(), keep_blank_values=True))


async def _sts(raw: Raw, params: dict[str, str]) -> tuple[int, dict[str, Any], Any]:
    async with raw.session.post(
        raw.emu.sts_endpoint,
        data=encode_form(params),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ) as resp:
        return resp.status, await resp.json(), resp.headers


async def _api(raw: Raw, source: Credentials, token: str | None) -> tuple[int, dict[str, Any]]:
    params = raw.signed(
        "QueryEdgeInstance",
        {},
        key_id=source.access_key_id,
        secret=source.access_key_secret,
        token=token,
    )
    answer = await raw.send(params)
    return answer.status, answer.body


@pytest.mark.parametrize(
    ("source", "token", "code"),
    [
        # A SecurityToken sent with a key that has none: the old STS check issued a key.
        (_PLAIN, "CAISforged", "InvalidSecurityToken.MismatchWithAccessKey"),
        # An STS key signing without its token: the old STS check said Mismatch.
        (_STS_KEY, None, "MissingSecurityToken"),
        (_STS_KEY, "CAISwrong", "InvalidSecurityToken.MismatchWithAccessKey"),
    ],
)
async def test_assume_role_checks_the_security_token_as_the_api_gateway_does(
    raw: Raw, source: Credentials, token: str | None, code: str
) -> None:
    api_status, api_body = await _api(raw, source, token)
    sts_status, sts_body, _ = await _sts(raw, _assume_role_params(raw.emu, source, token))
    assert (api_status, api_body["Code"]) == (400, code)
    assert (sts_status, sts_body["Code"]) == (api_status, api_body["Code"])
    assert sts_body["Message"] == api_body["Message"]
    assert "Credentials" not in sts_body


async def test_assume_role_refusals_say_what_the_api_gateway_says(raw: Raw) -> None:
    creds = raw.emu.credentials
    # A wrong signature: the service shows its string-to-sign (2.5), STS as the API does.
    params = _assume_role_params(raw.emu, creds, None)
    params["Signature"] = "bm90LXRoZS1zaWduYXR1cmU="
    status, body, _ = await _sts(raw, params)
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")
    assert body["Message"].endswith("server string to sign is:" + string_to_sign("POST", params))
    # A Timestamp that is not one: the same message as the API's.
    api = await raw.send(raw.signed("QueryEdgeInstance", {}, common={"Timestamp": "yesterday"}))
    params = _assume_role_params(raw.emu, creds, None)
    params["Timestamp"] = "yesterday"
    status, body, _ = await _sts(raw, params)
    assert (status, body["Code"], body["Message"]) == (400, api.code, api.body["Message"])
    # An Action neither knows: the same refusal.
    api = await raw.send(raw.signed("NoSuchAction", {}, validate=False))
    status, body, _ = await _sts(raw, {**params, "Action": "NoSuchAction"})
    assert (status, body["Code"], body["Message"]) == (404, api.code, api.body["Message"])
    assert set(body) == set(api.body) == {"RequestId", "HostId", "Code", "Message"}


async def test_every_emulated_endpoint_dates_its_answers_by_the_emulators_clock() -> None:
    clock = FakeClock(978_307_200.0)  # 2001-01-01, far from the wall clock
    async with Emulator(clock=clock) as emu, aiohttp.ClientSession() as session:
        expected = formatdate(clock(), usegmt=True)
        async with session.put(
            emu.endpoint + "/latest/api/token",
            headers={"X-aliyun-ecs-metadata-token-ttl-seconds": "60"},
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Date"] == expected
        role_url = emu.endpoint + "/latest/meta-data/ram/security-credentials/EcsRamRole"
        for url in (role_url, emu.credentials_uri, emu.endpoint + "/"):
            async with session.get(url) as resp:
                assert resp.headers["Date"] == expected, url
        async with session.post(emu.sts_endpoint, data={"Action": "AssumeRole"}) as resp:
            assert resp.status == 400  # no Version
            assert resp.headers["Date"] == expected
            assert resp.headers["x-acs-request-id"] == (await resp.json())["RequestId"]


async def test_metadata_refusals_answer_their_own_reason() -> None:
    async with Emulator(imds_v1=False) as emu, aiohttp.ClientSession() as session:
        url = emu.endpoint + "/latest/meta-data/ram/security-credentials/"

        async def get(headers: dict[str, str]) -> tuple[int, str]:
            async with session.get(url, headers=headers) as resp:
                return resp.status, await resp.text()

        assert await get({}) == (403, "Forbidden")
        assert await get({"X-aliyun-ecs-metadata-token": "unknown"}) == (401, "Unauthorized")
        emu.identity.set_fault("unavailable")
        # The token endpoint and the credentials endpoint say the same for the same 503.
        async with session.put(
            emu.endpoint + "/latest/api/token",
            headers={"X-aliyun-ecs-metadata-token-ttl-seconds": "60"},
        ) as resp:
            assert (resp.status, await resp.text()) == (503, "Service Unavailable")
        emu.identity.fault = None
        async with session.put(
            emu.endpoint + "/latest/api/token",
            headers={"X-aliyun-ecs-metadata-token-ttl-seconds": "60"},
        ) as resp:
            token = await resp.text()
        emu.identity.set_fault("unavailable")
        assert await get({"X-aliyun-ecs-metadata-token": token}) == (503, "Service Unavailable")


async def test_the_credentials_uri_is_unavailable_as_the_api_is() -> None:
    async with (
        Emulator(faults="*:unavailable") as emu,
        aiohttp.ClientSession() as session,
    ):
        raw = Raw(emu, session)
        api = await raw.send(raw.signed("QueryEdgeInstance", {}))
        emu.identity.set_fault("unavailable")
        async with session.get(emu.credentials_uri) as resp:
            body = await resp.json()
            assert resp.status == api.status == 503
        assert (body["Code"], body["Message"]) == (api.code, api.body["Message"])


async def test_an_unknown_deployment_gets_one_answer_from_the_inspection_endpoints() -> None:
    async with Emulator() as emu, aiohttp.ClientSession() as session:
        base = emu.endpoint + "/_emulator"
        async with session.get(f"{base}/timeline/nope") as resp:
            timeline = (resp.status, await resp.json())
        async with session.post(
            f"{base}/deployment-failures", json={"stage": 16, "deployment_id": "nope"}
        ) as resp:
            failure = (resp.status, await resp.json())
        assert timeline == failure == (404, {"error": "no deployment nope"})
        with pytest.raises(KeyError) as caught:
            emu.timeline("nope")
        assert str(caught.value) == "no deployment nope"
        # A bad body is still a 400.
        async with session.post(f"{base}/deployment-failures", json={"stage": 5}) as resp:
            assert resp.status == 400
