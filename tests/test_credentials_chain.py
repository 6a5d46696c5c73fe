"""The default chain's role sources, STS endpoint selection, and the command line's
``--profile`` with the new modes: end to end against the emulator where a key is fetched."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aioedge import (
    Credentials,
    CredentialsError,
    EcsRamRoleProvider,
    EdgeClient,
    OIDCRoleArnProvider,
    RamRoleArnProvider,
    URICredentialsProvider,
    ValidationError,
    default_credentials_provider,
)
from aioedge._chain import ChainProvider, resolve_credentials
from aioedge._providers import StaticCredentialsProvider
from aioedge._sts import sts_endpoint
from aioedge.testing import Emulator, FakeClock

ROLE = "acs:ram::1234567890:role/edge"
ROLE2 = "acs:ram::1234567890:role/edge-admin"
OIDC_PROVIDER = "acs:ram::1234567890:oidc-provider/ack-rrsa"
QUERY = ("QueryEdgeInstance", {"PageSize": 10, "CurrentPage": 1})
NO_NET = {"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}


def write_cli(home: Path, current: str, *profiles: dict[str, Any]) -> Path:
    path = home / ".aliyun" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"current": current, "profiles": list(profiles)}))
    return path


def write_ini(home: Path, text: str) -> Path:
    path = home / ".alibabacloud" / "credentials.ini"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- STS endpoint


def test_sts_endpoint_selection() -> None:
    assert sts_endpoint(None, {}) == "https://sts.aliyuncs.com"
    region = {"ALIBABA_CLOUD_STS_REGION": "cn-hangzhou"}
    assert sts_endpoint(None, region) == "https://sts.cn-hangzhou.aliyuncs.com"
    vpc = {**region, "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED": "true"}
    assert sts_endpoint(None, vpc) == "https://sts-vpc.cn-hangzhou.aliyuncs.com"
    # A profile's own sts_region / enable_vpc win over the environment's.
    assert sts_endpoint(None, vpc, region="ap-southeast-1", vpc=False) == (
        "https://sts.ap-southeast-1.aliyuncs.com"
    )
    host = {**vpc, "ALIBABA_CLOUD_STS_ENDPOINT": "sts.eu-central-1.aliyuncs.com"}
    assert sts_endpoint(None, host) == "https://sts.eu-central-1.aliyuncs.com"
    assert sts_endpoint("http://127.0.0.1:9000/sts", host) == "http://127.0.0.1:9000/sts"
    with pytest.raises(ValidationError) as info:
        sts_endpoint(None, {"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED": "true"})
    assert info.value.param == "ALIBABA_CLOUD_STS_REGION"
    with pytest.raises(ValidationError) as info:
        sts_endpoint(None, {"ALIBABA_CLOUD_STS_ENDPOINT": "http://sts.example.com"})
    assert info.value.param == "ALIBABA_CLOUD_STS_ENDPOINT" and "plain http" in str(info.value)
    with pytest.raises(ValidationError) as info:
        sts_endpoint(None, {"ALIBABA_CLOUD_STS_REGION": "Hangzhou!"})
    assert info.value.param == "ALIBABA_CLOUD_STS_REGION"
    with pytest.raises(ValidationError, match="sts_endpoint"):
        sts_endpoint("not a host/", {})


def test_provider_arguments_are_checked_before_any_io(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        RamRoleArnProvider(ROLE, source=Credentials("a", "b"), duration_seconds=60)
    assert info.value.param == "duration_seconds"
    with pytest.raises(ValidationError) as info:
        RamRoleArnProvider(ROLE, source="key")  # type: ignore[arg-type]
    assert info.value.param == "source"
    with pytest.raises(ValidationError) as info:
        EcsRamRoleProvider(endpoint="100.100.100.200")
    assert info.value.param == "endpoint"
    with pytest.raises(ValidationError) as info:
        URICredentialsProvider("ftp://agent/creds?secret=x")
    assert info.value.param == "uri"
    with pytest.raises(CredentialsError, match="ALIBABA_CLOUD_CREDENTIALS_URI not set"):
        URICredentialsProvider(env={})
    with pytest.raises(CredentialsError) as cred:
        OIDCRoleArnProvider(env={})
    assert str(cred.value).startswith(
        "OIDC (RRSA): ALIBABA_CLOUD_ROLE_ARN and ALIBABA_CLOUD_OIDC_PROVIDER_ARN and "
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE not set"
    )
    # The URI's query (an agent's secret, perhaps) is never shown.
    p = URICredentialsProvider("http://127.0.0.1:1/creds?signature=s3cr3t")
    assert "s3cr3t" not in repr(p) and "s3cr3t" not in p.source


# --------------------------------------------------------------------------- env sources


async def test_oidc_environment_drives_the_client_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tmp_path / "token"
    token.write_text("rrsa-token")
    async with Emulator(quotas=False) as emu:
        for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_ID"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("ALIBABA_CLOUD_ROLE_ARN", ROLE)
        monkeypatch.setenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", OIDC_PROVIDER)
        monkeypatch.setenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE", str(token))
        monkeypatch.setenv("ALIBABA_CLOUD_ROLE_SESSION_NAME", "edge-pod")
        monkeypatch.setenv("ALIBABA_CLOUD_STS_ENDPOINT", emu.sts_endpoint)
        monkeypatch.setenv("HOME", str(tmp_path))
        async with EdgeClient(endpoint=emu.endpoint) as client:
            provider = client.credentials
            assert isinstance(provider, OIDCRoleArnProvider)
            assert provider.role_session_name == "edge-pod"
            assert client.quota_scope == ROLE  # stable across refreshes
            assert (await client.call(*QUERY))["Success"] is True
        assert emu.identity.issued["AssumeRoleWithOIDC"] == 1
        # Environment keys come first.
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "AKenv")
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "SKenv")
        found = default_credentials_provider()
        assert isinstance(found, StaticCredentialsProvider)
        assert (await found.get_credentials()).access_key_id == "AKenv"


# --------------------------------------------------------------------------- config.json


def test_cli_config_role_modes(tmp_path: Path) -> None:
    token = tmp_path / "t"
    cli = write_cli(
        tmp_path,
        "ram",
        {
            "name": "ram",
            "mode": "RamRoleArn",
            "access_key_id": "AKram",
            "access_key_secret": "SKram-secret",
            "ram_role_arn": ROLE,
            "ram_session_name": "deployer",
            "expired_seconds": 1800,
            "external_id": "ext-1",
            "sts_region": "cn-shanghai",
            "enable_vpc": "true",
        },
        {"name": "ecs", "mode": "EcsRamRole", "ram_role_name": "EdgeRole"},
        {
            "name": "oidc",
            "mode": "OIDC",
            "ram_role_arn": ROLE,
            "oidc_provider_arn": OIDC_PROVIDER,
            "oidc_token_file": str(token),
        },
        {
            "name": "chain",
            "mode": "ChainableRamRoleArn",
            "source_profile": "ram",
            "ram_role_arn": ROLE2,
        },
    )
    ram = resolve_credentials(env={}, home=tmp_path)
    assert isinstance(ram, RamRoleArnProvider)
    assert (ram.role_arn, ram.role_session_name, ram.duration_seconds) == (ROLE, "deployer", 1800)
    assert ram.external_id == "ext-1"
    assert ram.sts_endpoint == "https://sts-vpc.cn-shanghai.aliyuncs.com"
    assert "SKram-secret" not in repr(ram)
    ecs = resolve_credentials(profile="ecs", env={}, home=tmp_path)
    assert isinstance(ecs, EcsRamRoleProvider) and ecs.role_name == "EdgeRole"
    oidc = resolve_credentials(profile="oidc", env={}, home=tmp_path)
    assert isinstance(oidc, OIDCRoleArnProvider) and oidc.oidc_token_file == str(token)
    chain = resolve_credentials(profile="chain", env={}, home=tmp_path)
    assert isinstance(chain, RamRoleArnProvider) and chain.role_arn == ROLE2
    inner = chain.source_credentials
    assert isinstance(inner, RamRoleArnProvider) and inner.role_arn == ROLE
    assert cli.exists()


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"mode": "Magic"}, "unknown mode 'Magic' (supported: AK, StsToken, RamRoleArn,"),
        ({"mode": "OIDC", "ram_role_arn": ROLE}, "mode OIDC needs oidc_provider_arn, oidc_token"),
        ({"mode": "ChainableRamRoleArn", "ram_role_arn": ROLE}, "needs source_profile"),
        (
            {"mode": "ChainableRamRoleArn", "ram_role_arn": ROLE, "source_profile": "bad"},
            "source_profile 'bad' loops back (bad -> bad)",
        ),
        (
            {"mode": "ChainableRamRoleArn", "ram_role_arn": ROLE, "source_profile": "gone"},
            "source_profile 'gone': profile 'gone' not found",
        ),
        (
            {
                "mode": "RamRoleArn",
                "access_key_id": "a",
                "access_key_secret": "b",
                "ram_role_arn": ROLE,
                "expired_seconds": "soon",
            },
            "expired_seconds must be a number of seconds, got 'soon'",
        ),
        (
            {
                "mode": "RamRoleArn",
                "access_key_id": "a",
                "access_key_secret": "b",
                "ram_role_arn": ROLE,
                "expired_seconds": 60,
            },
            "duration_seconds must be an integer from 900 to 43200 (STS), got 60",
        ),
    ],
)
def test_cli_profiles_configured_wrongly_are_one_line_naming_file_and_profile(
    tmp_path: Path, profile: dict[str, Any], message: str
) -> None:
    cli = write_cli(tmp_path, "bad", {"name": "bad", **profile})
    with pytest.raises(CredentialsError) as info:
        resolve_credentials(env=NO_NET, home=tmp_path)
    text = str(info.value)
    assert text.startswith(f"{cli} [bad]: ") and message in text, text
    assert "\n" not in text


def test_cli_profile_disabled_by_environment(tmp_path: Path) -> None:
    write_cli(tmp_path, "bad", {"name": "bad", "mode": "Magic"})
    write_ini(tmp_path, "[default]\naccess_key_id = AKi\naccess_key_secret = SKi\n")
    env = {"ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true"}
    found = resolve_credentials(env=env, home=tmp_path)
    assert isinstance(found, Credentials) and found.access_key_id == "AKi"


# --------------------------------------------------------------------------- credentials.ini


def test_ini_role_types(tmp_path: Path) -> None:
    write_ini(
        tmp_path,
        f"[default]\ntype = ram_role_arn\naccess_key_id = AKi\naccess_key_secret = SKi\n"
        f"role_arn = {ROLE}  # the deployer\nrole_session_name = ini\n"
        f"[ecs]\ntype = ecs_ram_role\nrole_name = EdgeRole\n"
        f"[oidc]\ntype = oidc_role_arn\nrole_arn = {ROLE}\noidc_provider_arn = {OIDC_PROVIDER}\n"
        f"oidc_token_file_path = /var/run/token\n"
        f"[odd]\ntype = rsa_key_pair\n"
        f"[half]\ntype = oidc_role_arn\nrole_arn = {ROLE}\n",
    )
    ram = resolve_credentials(env={}, home=tmp_path)
    assert isinstance(ram, RamRoleArnProvider) and ram.role_arn == ROLE
    assert ram.role_session_name == "ini"
    ecs = resolve_credentials(profile="ecs", env={}, home=tmp_path)
    assert isinstance(ecs, EcsRamRoleProvider) and ecs.role_name == "EdgeRole"
    oidc = resolve_credentials(profile="oidc", env={}, home=tmp_path)
    assert isinstance(oidc, OIDCRoleArnProvider) and oidc.oidc_token_file == "/var/run/token"
    with pytest.raises(CredentialsError, match=r"\[odd\]: unknown type 'rsa_key_pair'"):
        resolve_credentials(profile="odd", env={}, home=tmp_path)
    with pytest.raises(CredentialsError, match="type oidc_role_arn needs oidc_provider_arn"):
        resolve_credentials(profile="half", env={}, home=tmp_path)


# --------------------------------------------------------------------------- network steps


async def test_network_steps_are_tried_in_order_at_the_first_call() -> None:
    clock = FakeClock(float(int(time.time())))
    async with Emulator(clock=clock, quotas=False) as emu:
        env = {
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "false",
            "ALIBABA_CLOUD_CREDENTIALS_URI": emu.credentials_uri,
        }
        found = resolve_credentials(env=env, home=Path("/nonexistent"), clock=clock)
        assert isinstance(found, ChainProvider)
        assert [type(p).__name__ for p in found.providers] == [
            "EcsRamRoleProvider",
            "URICredentialsProvider",
        ]
        # Nothing answers where the metadata service would be (the discard port, in place
        # of 100.100.100.200): the URI is next.
        assert isinstance(found.providers[0], EcsRamRoleProvider)
        nowhere = EcsRamRoleProvider(endpoint="http://127.0.0.1:9", clock=clock)
        found.providers = (nowhere, found.providers[1])
        async with EdgeClient(
            credentials=found, endpoint=emu.endpoint, clock=clock, rate_limit=False
        ) as client:
            assert (await client.call(*QUERY))["Success"] is True
            assert (await client.call(*QUERY))["Success"] is True
        assert isinstance(found.chosen, URICredentialsProvider)
        assert emu.identity.issued["uri"] == 1  # chosen once, then cached
        # With both gone, the error lists every source and why.
        lost = resolve_credentials(env=env, home=Path("/nonexistent"), clock=clock)
        assert isinstance(lost, ChainProvider)
        lost.providers = (nowhere, lost.providers[1])
        emu.identity.set_fault("unavailable")
        with pytest.raises(CredentialsError) as info:
            await lost.get_credentials()
    text = str(info.value)
    assert text.startswith("no credentials found; tried: environment variables")
    assert "ECS metadata (127.0.0.1:9): cannot reach 127.0.0.1:9" in text
    assert "credentials URI (http://127.0.0.1:" in text and "ServiceUnavailable" in text
    assert "\n" not in text


async def test_ecs_role_via_the_chain_with_the_metadata_service_of_the_emulator() -> None:
    clock = FakeClock(float(int(time.time())))
    async with Emulator(clock=clock, quotas=False, imds_v1=False) as emu:
        env = {"ALIBABA_CLOUD_ECS_METADATA": "EcsRamRole"}
        chain = resolve_credentials(env=env, home=Path("/nonexistent"), clock=clock)
        assert isinstance(chain, ChainProvider)
        ecs = chain.providers[0]
        assert isinstance(ecs, EcsRamRoleProvider) and ecs.role_name == "EcsRamRole"
        here = EcsRamRoleProvider(endpoint=emu.metadata_endpoint, env=env, clock=clock)
        assert here.role_name == "EcsRamRole"
        chain.providers = (here,)
        key = await chain.get_credentials()
        assert key.access_key_id.startswith("STS.") and key.expiration is not None
        assert isinstance(chain.chosen, EcsRamRoleProvider)
        # refresh() reaches the chosen provider.
        assert (await chain.refresh(stale=key)) != key


# --------------------------------------------------------------------------- command line


async def test_cli_profile_with_chainable_role_modes(tmp_path: Path) -> None:
    async with Emulator(speed=50, quotas=False) as emu:
        creds = emu.credentials
        write_cli(
            tmp_path,
            "main",
            {
                "name": "base",
                "mode": "RamRoleArn",
                "access_key_id": creds.access_key_id,
                "access_key_secret": creds.access_key_secret,
                "ram_role_arn": ROLE,
            },
            {
                "name": "admin",
                "mode": "ChainableRamRoleArn",
                "source_profile": "base",
                "ram_role_arn": ROLE2,
            },
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_", "ALIYUN_"))}
        env.update(
            HOME=str(tmp_path),
            ALIBABA_CLOUD_ECS_METADATA_DISABLED="true",
            ALIBABA_CLOUD_STS_ENDPOINT=emu.sts_endpoint,
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aioedge",
            "call",
            "QueryEdgeInstance",
            "--endpoint",
            emu.endpoint,
            "--profile",
            "admin",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        assert json.loads(out)["Success"] is True
        # Two AssumeRoles: base with the emulator's key, admin with base's STS key.
        roles = [r.role for r in emu.identity.records if r.kind == "AssumeRole"]
        assert roles == [ROLE, ROLE2]
        # A profile configured wrongly: exit 2, one line naming it, nothing sent.
        write_cli(tmp_path, "main", {"name": "main", "mode": "Magic"})
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aioedge",
            "call",
            "QueryEdgeInstance",
            "--endpoint",
            emu.endpoint,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 2
        lines = err.decode().splitlines()
        assert len(lines) == 1 and "[main]: unknown mode 'Magic'" in lines[0]
        assert emu.stats()["QueryEdgeInstance"]["requests"] == 1


async def test_the_emulator_command_serves_the_identity_side(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_", "ALIYUN_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aioedge",
        "emulator",
        "--port",
        "0",
        "--json",
        "--token-lifetime",
        "30",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        assert info["sts_endpoint"] == info["endpoint"] + "/sts"
        token = tmp_path / "token"
        token.write_text("t")
        provider = OIDCRoleArnProvider(
            ROLE, OIDC_PROVIDER, token, sts_endpoint=info["sts_endpoint"]
        )
        before = time.time()
        key = await provider.get_credentials()
        assert key.expiration is not None and 25 <= key.expiration - before <= 31
        uri_key = await URICredentialsProvider(info["credentials_uri"]).get_credentials()
        ecs_key = await EcsRamRoleProvider(endpoint=info["metadata_endpoint"]).get_credentials()
        assert len({key.access_key_id, uri_key.access_key_id, ecs_key.access_key_id}) == 3
        async with EdgeClient(credentials=provider, endpoint=info["endpoint"]) as client:
            assert (await client.call(*QUERY))["Success"] is True
    finally:
        proc.terminate()
        await proc.wait()


def test_provider_signatures_hold() -> None:
    import inspect

    def shape(obj: Any) -> list[tuple[str, str, Any]]:
        return [
            (p.name, p.kind.name, p.default)
            for p in inspect.signature(obj).parameters.values()
            if p.name not in ("sts_region", "enable_vpc", "env", "clock")
        ]

    empty = inspect.Parameter.empty
    pos, kw = "POSITIONAL_OR_KEYWORD", "KEYWORD_ONLY"
    assert shape(OIDCRoleArnProvider) == [
        ("role_arn", pos, None),
        ("oidc_provider_arn", pos, None),
        ("oidc_token_file", pos, None),
        ("role_session_name", kw, None),
        ("duration_seconds", kw, 3600),
        ("policy", kw, None),
        ("sts_endpoint", kw, None),
    ]
    assert shape(EcsRamRoleProvider) == [
        ("role_name", pos, None),
        ("endpoint", kw, "http://100.100.100.200"),
        ("disable_imds_v1", kw, False),
    ]
    assert shape(RamRoleArnProvider) == [
        ("role_arn", pos, empty),
        ("source", kw, empty),
        ("role_session_name", kw, None),
        ("duration_seconds", kw, 3600),
        ("policy", kw, None),
        ("external_id", kw, None),
        ("sts_endpoint", kw, None),
    ]
    assert shape(URICredentialsProvider) == [("uri", pos, None)]
    assert shape(default_credentials_provider)[0] == ("profile", pos, None)
    import aioedge

    assert isinstance(OIDCRoleArnProvider, type)
    assert aioedge.CredentialsProvider is not None
    assert isinstance(StaticCredentialsProvider(Credentials("a", "b")), aioedge.CredentialsProvider)
