"""How settings reach the library (``aioedge._settings``): one rule each, and every reader
asks it: the region, the URL checks, how a URL is shown, which strings are Redis URLs."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from aioedge import (
    CredentialsError,
    EdgeClient,
    ValidationError,
)
from aioedge._settings import check_region
from aioedge._sts import sts_endpoint

from .support import TEST_CREDS

SECRET = "sekret-4711"


def _closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
