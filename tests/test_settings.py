"""How settings reach the library (``aioedge._settings``): one rule each, and every reader
asks it: the region, the URL checks, how a URL is shown, which strings are Redis URLs."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from aioedge import (
    CredentialsError,
    EcsRamRoleProvider,
    EdgeClient,
    OIDCRoleArnProvider,
    TransportError,
    URICredentialsProvider,
    ValidationError,
)
from aioedge._chain import resolve_credentials
from aioedge._settings import (
    check_region,
    env_value,
    is_redis_url,
    pick_region,
    redact_url,
    url_host,
)
from aioedge._sts import sts_endpoint
from aioedge.testing import Emulator

from .support import TEST_CREDS

SECRET = "sekret-4711"


def _closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- showing a URL


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:sekret-4711@127.0.0.1:1/0", "redis://user:***@127.0.0.1:1/0"),
        ("redis://:sekret-4711@h/0", "redis://:***@h/0"),
        ("redis://h:1/0?password=sekret-4711&db=2", "redis://h:1/0?password=***&db=***"),
        ("http://agent/creds?token=sekret-4711", "http://agent/creds?token=***"),
        ("unix://:sekret-4711@/tmp/redis.sock", "unix://:***@/tmp/redis.sock"),
        # A password with a character that ends the host part in a parser is masked whole.
        ("redis://:sekret/4711@h/0", "redis://:***@h/0"),
        ("redis://:sekret?4711@h/0", "redis://:***@h/0"),
        ("redis://:sekret#4711@h/0", "redis://:***@h/0"),
        ("http://u@h/x?mail=sekret-4711@example.com", "http://u@h/x?mail=***"),
        ("https://iot.cn-shanghai.aliyuncs.com", "https://iot.cn-shanghai.aliyuncs.com"),
        ("http://[::1", "http://[::1"),  # does not parse: shown, never an exception
    ],
)
def test_a_url_is_shown_without_its_password_or_query_values(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "4711" not in url_host(url)


def test_url_host_names_the_host_and_port_only() -> None:
    assert url_host("http://user:pw@127.0.0.1:8080/creds?token=x") == "127.0.0.1:8080"
    assert url_host("https://sts.aliyuncs.com") == "sts.aliyuncs.com"


async def test_a_password_in_the_endpoint_is_never_shown() -> None:
    # The check's message, the client's repr and a network error all name the endpoint.
    with pytest.raises(ValidationError) as info:
        EdgeClient(credentials=TEST_CREDS, endpoint=f"http://u:{SECRET}@iot.example.com")
    assert info.value.param == "endpoint" and SECRET not in str(info.value)
    remote = EdgeClient(credentials=TEST_CREDS, endpoint=f"https://u:{SECRET}@iot.example.com")
    assert SECRET not in repr(remote)
    port = _closed_port()
    async with EdgeClient(
        credentials=TEST_CREDS,
        endpoint=f"http://u:{SECRET}@127.0.0.1:{port}",
        rate_limit=False,
        retry=None,
    ) as client:
        with pytest.raises(TransportError) as err:
            await client.call("GetEdgeInstance", {"InstanceId": "x"})
    assert f"cannot connect to 127.0.0.1:{port}" in str(err.value)
    assert SECRET not in str(err.value)


async def test_a_secret_in_a_credentials_uri_is_never_shown() -> None:
    port = _closed_port()
    provider = URICredentialsProvider(f"http://agent:{SECRET}@127.0.0.1:{port}/creds?token=tok1")
    assert SECRET not in repr(provider) and "tok1" not in repr(provider)
    with pytest.raises(CredentialsError) as info:
        await provider.get_credentials()
    text = str(info.value)
    assert f"cannot reach 127.0.0.1:{port}" in text
    assert SECRET not in text and "tok1" not in text
    with pytest.raises(ValidationError) as bad:
        URICredentialsProvider(f"ftp://agent/creds?secret={SECRET}")
    assert bad.value.param == "uri" and SECRET not in str(bad.value)


async def test_a_password_in_the_metadata_endpoint_is_never_shown() -> None:
    port = _closed_port()
    provider = EcsRamRoleProvider(endpoint=f"http://u:{SECRET}@127.0.0.1:{port}")
    assert SECRET not in repr(provider)
    with pytest.raises(CredentialsError) as info:
        await provider.get_credentials()
    assert f"127.0.0.1:{port}" in str(info.value) and SECRET not in str(info.value)


async def test_a_redis_password_in_the_query_is_never_shown() -> None:
    pytest.importorskip("redis")
    from aioedge import RedisCoordinator, RedisRateLimiter
    from aioedge._redis import RedisUnavailableError

    url = f"redis://127.0.0.1:{_closed_port()}/0?password={SECRET}"
    limiter = RedisRateLimiter(url, connect_timeout=0.5, on_unavailable="fail")
    assert SECRET not in repr(limiter)
    with pytest.raises(RedisUnavailableError) as info:
        async with limiter.slot("AK", "GetEdgeInstance", 10):
            pass
    assert SECRET not in str(info.value)
    await limiter.aclose()
    coordinator = RedisCoordinator(url, connect_timeout=0.5)
    assert SECRET not in repr(coordinator)
    with pytest.raises(RedisUnavailableError) as info:
        await coordinator.open()
    assert SECRET not in str(info.value)
    await coordinator.close()


# --------------------------------------------------------------------------- checking a URL


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://[::1", "http://127.0.0.1:x"])
def test_every_url_is_checked_by_one_rule(url: str) -> None:
    # The API endpoint was checked strictly; the metadata endpoint and the credentials URI
    # only for a scheme and a host, so a bad port failed at the first refresh instead,
    # as if the service were down.
    with pytest.raises(ValidationError) as info:
        EdgeClient(credentials=TEST_CREDS, endpoint=url)
    assert info.value.param == "endpoint"
    with pytest.raises(ValidationError) as info:
        sts_endpoint(url, {})
    assert info.value.param == "sts_endpoint"
    with pytest.raises(ValidationError) as info:
        EcsRamRoleProvider(endpoint=url)
    assert info.value.param == "endpoint"
    with pytest.raises(ValidationError) as info:
        URICredentialsProvider(url + "/creds")
    assert info.value.param == "uri"
    with pytest.raises(ValidationError) as info:
        URICredentialsProvider(env={"ALIBABA_CLOUD_CREDENTIALS_URI": url + "/creds"})
    assert info.value.param == "ALIBABA_CLOUD_CREDENTIALS_URI"


def test_a_bad_credentials_uri_stops_the_chain(tmp_path: Path) -> None:
    env = {
        "ALIBABA_CLOUD_CREDENTIALS_URI": "http://127.0.0.1:99999/creds",
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    }
    with pytest.raises(ValidationError) as info:
        resolve_credentials(env=env, home=tmp_path)
    assert info.value.param == "ALIBABA_CLOUD_CREDENTIALS_URI"


async def test_a_credentials_uri_keeps_its_path_and_plain_http() -> None:
    async with Emulator() as emu:
        uri = emu.credentials_uri + "/"  # not an endpoint: its trailing / stays
        provider = URICredentialsProvider(uri)
        assert provider.uri == uri


# --------------------------------------------------------------------------- Redis URLs


def test_redis_urls_are_recognised_as_redis_py_reads_them() -> None:
    for url in ("redis://h/0", "rediss://h", "unix:///tmp/r.sock", "REDIS://h/0", "Redis://h"):
        assert is_redis_url(url), url
    for url in ("redis:h", "http://h", "/tmp/rollout.json", "redis", 42, None):
        assert not is_redis_url(url), url


def test_a_url_redis_will_refuse_is_refused_when_built() -> None:
    # The limiter connects lazily: "redis:h" passed its check and failed at the first
    # slot with redis-py's bare ValueError.
    pytest.importorskip("redis")
    from aioedge import RedisCoordinator, RedisRateLimiter

    for make in (RedisRateLimiter, RedisCoordinator):
        with pytest.raises(ValueError, match="not a Redis URL"):
            make(f"redis:{SECRET}")  # type: ignore[operator]


async def test_a_rollout_store_url_is_redis_in_any_case() -> None:
    # open_store compared the scheme case-sensitively: "REDIS://..." became a file path,
    # refused with a message that quoted the password.
    pytest.importorskip("redis")
    from aioedge._rollout_run import RedisRolloutStore, Rollout

    client: object = object()  # never called
    rollout = Rollout(client, ["a"], store=f"REDIS://:{SECRET}@127.0.0.1:1/0")  # type: ignore[arg-type]
    store = rollout._store
    assert isinstance(store, RedisRolloutStore)
    assert SECRET not in repr(store)
    await store.aclose()


# --------------------------------------------------------------------------- region


def test_one_region_rule_for_the_client_and_sts() -> None:
    for good in ("cn-shanghai", "ap-southeast-1", "eu-central-1"):
        assert check_region(good, "x") == good
        assert sts_endpoint(None, {}, region=good) == f"https://sts.{good}.aliyuncs.com"
        assert EdgeClient(credentials=TEST_CREDS, region_id=good).region_id == good
    for bad in ("Shanghai", "cn_shanghai", "cn", "cn-shanghai "):
        with pytest.raises(ValidationError):
            sts_endpoint(None, {}, region=bad)
        with pytest.raises(ValidationError):
            EdgeClient(credentials=TEST_CREDS, region_id=bad)


def test_a_bad_region_from_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As STS's own (ALIBABA_CLOUD_STS_REGION) always did: the setting to fix is the variable.
    monkeypatch.setenv("ALIBABA_CLOUD_REGION_ID", "Shanghai")
    with pytest.raises(ValidationError) as info:
        EdgeClient(credentials=TEST_CREDS)
    assert info.value.param == "ALIBABA_CLOUD_REGION_ID"
    assert str(info.value).startswith("ALIBABA_CLOUD_REGION_ID must look like")
    with pytest.raises(ValidationError) as info:
        EdgeClient(credentials=TEST_CREDS, region_id="Beijing")
    assert info.value.param == "region_id"


def test_settings_are_checked_before_credentials_are_looked_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A typo in a setting is the error reported, not a credentials error that hides it.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("ALIBABA_CLOUD_CREDENTIALS_FILE", raising=False)
    monkeypatch.delenv("ALIBABA_CLOUD_PROFILE", raising=False)
    with pytest.raises(CredentialsError):
        EdgeClient(profile="nope")
    for bad, param in (
        ({"region_id": "moon"}, "region_id"),
        ({"endpoint": "ftp://x"}, "endpoint"),
        ({"timeout": 0}, "timeout"),
        ({"method": "PUT"}, "method"),
        ({"iot_instance_id": ""}, "iot_instance_id"),
    ):
        with pytest.raises(ValidationError) as info:
            EdgeClient(profile="nope", **bad)  # type: ignore[arg-type]
        assert info.value.param == param


# --------------------------------------------------------------------------- environment


def test_an_empty_variable_is_unset_for_every_reader(tmp_path: Path) -> None:
    # VAR= means unset; ALIBABA_CLOUD_ROLE_SESSION_NAME= was taken as an empty session
    # name and refused, where every other variable fell back to its default.
    oidc = {
        "ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1:role/r",
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::1:oidc-provider/p",
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(tmp_path / "token"),
        "ALIBABA_CLOUD_ROLE_SESSION_NAME": "",
        "ALIBABA_CLOUD_STS_ENDPOINT": "",
        "ALIBABA_CLOUD_STS_REGION": "",
    }
    provider = OIDCRoleArnProvider(env=oidc)
    assert provider.role_session_name.startswith("aioedge-")
    assert provider.sts_endpoint == "https://sts.aliyuncs.com"
    found = resolve_credentials(env=oidc, home=tmp_path)
    assert isinstance(found, OIDCRoleArnProvider)
    assert found.role_session_name.startswith("aioedge-")
    assert pick_region(None, {"ALIBABA_CLOUD_REGION_ID": ""}) == "cn-shanghai"
    assert env_value({"X": ""}, "X") is None and env_value({"X": "v"}, "X") == "v"


def test_an_empty_url_is_refused_not_taken_for_the_default() -> None:
    # As sts_endpoint="" and --endpoint "" always were: an empty endpoint sent every call to
    # the production API of the default region.
    with pytest.raises(ValidationError) as info:
        EdgeClient(credentials=TEST_CREDS, endpoint="")
    assert info.value.param == "endpoint"
    with pytest.raises(ValidationError) as info:
        sts_endpoint("", {})
    assert info.value.param == "sts_endpoint"
    with pytest.raises(ValidationError) as info:
        URICredentialsProvider(uri="")
    assert info.value.param == "uri"
    with pytest.raises(CredentialsError, match="ALIBABA_CLOUD_CREDENTIALS_URI not set"):
        URICredentialsProvider(env={"ALIBABA_CLOUD_CREDENTIALS_URI": ""})
