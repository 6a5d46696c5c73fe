"""The credential chain and secret hygiene."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aioedge import Credentials, CredentialsError, RamRoleArnProvider
from aioedge._chain import ChainProvider, resolve_credentials
from aioedge._credentials import expired

# No ECS metadata service to try (the chain's network sources would be next).
NO_NET = {"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}


def test_explicit_wins(tmp_path: Path) -> None:
    creds = Credentials("AK", "SK")
    assert (
        resolve_credentials(creds, env={"ALIBABA_CLOUD_ACCESS_KEY_ID": "x"}, home=tmp_path) is creds
    )


def test_env_then_legacy_env(tmp_path: Path) -> None:
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "AK1",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "SK1",
        "ALIBABA_CLOUD_SECURITY_TOKEN": "TOK",
        "ALIYUN_ACCESS_KEY_ID": "AK2",
        "ALIYUN_ACCESS_KEY_SECRET": "SK2",
    }
    c = resolve_credentials(env=env, home=tmp_path)
    assert (c.access_key_id, c.access_key_secret, c.security_token) == ("AK1", "SK1", "TOK")
    c = resolve_credentials(
        env={"ALIYUN_ACCESS_KEY_ID": "AK2", "ALIYUN_ACCESS_KEY_SECRET": "SK2"}, home=tmp_path
    )
    assert c.access_key_id == "AK2" and "ALIYUN" in c.source


def _write_cli(home: Path) -> None:
    (home / ".aliyun").mkdir()
    (home / ".aliyun" / "config.json").write_text(
        json.dumps(
            {
                "current": "main",
                "profiles": [
                    {
                        "name": "main",
                        "mode": "AK",
                        "access_key_id": "AKm",
                        "access_key_secret": "SKm",
                    },
                    {
                        "name": "sts",
                        "mode": "StsToken",
                        "access_key_id": "AKs",
                        "access_key_secret": "SKs",
                        "sts_token": "TOKs",
                    },
                    {
                        "name": "ram",
                        "mode": "RamRoleArn",
                        "access_key_id": "a",
                        "access_key_secret": "b",
                    },
                ],
            }
        )
    )


def test_cli_config_current_and_named_profiles(tmp_path: Path) -> None:
    _write_cli(tmp_path)
    assert resolve_credentials(env={}, home=tmp_path).access_key_id == "AKm"
    sts = resolve_credentials(env={"ALIBABA_CLOUD_PROFILE": "sts"}, home=tmp_path)
    assert (sts.access_key_id, sts.security_token) == ("AKs", "TOKs")
    assert resolve_credentials(profile="sts", env={}, home=tmp_path).access_key_id == "AKs"
    with pytest.raises(CredentialsError, match="mode RamRoleArn needs ram_role_arn") as info:
        resolve_credentials(profile="ram", env={}, home=tmp_path)
    # A role profile configured wrongly stops the chain: nothing else is tried.
    assert info.value.tried == (str(tmp_path / ".aliyun" / "config.json"),)
    assert "[ram]" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(CredentialsError, match="'nope' not found") as info:
        resolve_credentials(profile="nope", env={}, home=tmp_path)
    assert len(info.value.tried) == 2


def test_explicit_profile_skips_environment(tmp_path: Path) -> None:
    _write_cli(tmp_path)
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "ENV", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "ENVS"}
    assert resolve_credentials(env=env, home=tmp_path).access_key_id == "ENV"
    assert resolve_credentials(profile="sts", env=env, home=tmp_path).access_key_id == "AKs"


def test_credentials_ini(tmp_path: Path) -> None:
    ini = tmp_path / "creds.ini"
    ini.write_text(
        "[default]\ntype = access_key\naccess_key_id = AKi\naccess_key_secret = SKi\n"
        "[other]\ntype = sts\naccess_key_id = AKo\naccess_key_secret = SKo\nsecurity_token = T\n"
    )
    env = {"ALIBABA_CLOUD_CREDENTIALS_FILE": str(ini)}
    assert resolve_credentials(env=env, home=tmp_path).access_key_id == "AKi"
    other = resolve_credentials(profile="other", env=env, home=tmp_path)
    assert (other.access_key_id, other.security_token) == ("AKo", "T")
    (tmp_path / ".alibabacloud").mkdir()
    (tmp_path / ".alibabacloud" / "credentials.ini").write_text(
        "[default]\naccess_key_id = AKh\naccess_key_secret = SKh\n"
    )
    assert resolve_credentials(env={}, home=tmp_path).access_key_id == "AKh"


def test_nothing_found_lists_what_was_tried(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError) as info:
        resolve_credentials(env=NO_NET, home=tmp_path)
    msg = str(info.value)
    assert "environment" in msg and "config.json" in msg and "credentials.ini" in msg
    assert "ECS metadata (disabled" in msg and "ALIBABA_CLOUD_CREDENTIALS_URI" in msg
    assert len(info.value.tried) == 6
    # With the metadata service allowed, the chain ends in its network sources, tried at
    # the first call (tests/test_credentials_chain.py).
    chain = resolve_credentials(env={}, home=tmp_path)
    assert isinstance(chain, ChainProvider)
    assert [type(p).__name__ for p in chain.providers] == ["EcsRamRoleProvider"]


def _write_ini(home: Path, text: str) -> None:
    (home / ".alibabacloud").mkdir()
    (home / ".alibabacloud" / "credentials.ini").write_text(text)


INI = (
    "[default]\naccess_key_id = AKdef\naccess_key_secret = SKdef\n"
    "[foo]\naccess_key_id = AKfoo\naccess_key_secret = SKfoo\n"
    "[ram]\ntype = sts\naccess_key_id = AKram\naccess_key_secret = SKram\n"
    "security_token = TOKram\n"
)


@pytest.mark.parametrize("how", ["env", "argument"])
def test_profile_missing_from_cli_file_falls_through_to_ini(tmp_path: Path, how: str) -> None:
    _write_cli(tmp_path)
    _write_ini(tmp_path, INI)
    if how == "env":
        c = resolve_credentials(env={"ALIBABA_CLOUD_PROFILE": "foo"}, home=tmp_path)
    else:
        c = resolve_credentials(profile="foo", env={}, home=tmp_path)
    assert (c.access_key_id, c.access_key_secret) == ("AKfoo", "SKfoo")
    assert c.source.endswith("credentials.ini [foo]")


def test_named_role_profile_missing_its_role_is_an_error_not_the_ini(tmp_path: Path) -> None:
    _write_cli(tmp_path)
    _write_ini(tmp_path, INI)
    with pytest.raises(CredentialsError, match="needs ram_role_arn"):
        resolve_credentials(profile="ram", env={}, home=tmp_path)


def test_current_ram_role_profile_is_a_provider(tmp_path: Path) -> None:
    (tmp_path / ".aliyun").mkdir()
    (tmp_path / ".aliyun" / "config.json").write_text(
        json.dumps(
            {
                "current": "ram",
                "profiles": [
                    {
                        "name": "ram",
                        "mode": "RamRoleArn",
                        "access_key_id": "AKr",
                        "access_key_secret": "SKr-secret",
                        "ram_role_arn": "acs:ram::1:role/x",
                    }
                ],
            }
        )
    )
    found = resolve_credentials(env={}, home=tmp_path)
    assert isinstance(found, RamRoleArnProvider)
    assert found.role_arn == "acs:ram::1:role/x"
    assert found.sts_endpoint == "https://sts.aliyuncs.com"
    source = found.source_credentials
    assert isinstance(source, Credentials) and source.access_key_id == "AKr"
    assert "SKr-secret" not in repr(found)
    _write_ini(tmp_path, INI)  # the CLI file comes first
    assert isinstance(resolve_credentials(env={}, home=tmp_path), RamRoleArnProvider)


@pytest.mark.parametrize("with_cli_file", [False, True])
def test_named_profile_missing_everywhere_is_an_error_not_default(
    tmp_path: Path, with_cli_file: bool
) -> None:
    if with_cli_file:
        _write_cli(tmp_path)
    _write_ini(tmp_path, INI)
    for kwargs in ({"env": {"ALIBABA_CLOUD_PROFILE": "nope"}}, {"profile": "nope", "env": {}}):
        with pytest.raises(CredentialsError) as info:
            resolve_credentials(home=tmp_path, **kwargs)  # type: ignore[arg-type]
        msg = str(info.value)
        assert "'nope'" in msg and "[nope]" in msg
        assert "AKdef" not in msg and "SKdef" not in msg and "SKfoo" not in msg
        assert any("config.json" in t for t in info.value.tried)
        assert any("credentials.ini" in t and "no section [nope]" in t for t in info.value.tried)


def test_unreadable_file_error_lists_what_was_tried(tmp_path: Path) -> None:
    (tmp_path / ".aliyun").mkdir()
    (tmp_path / ".aliyun" / "config.json").write_text("{not json")
    with pytest.raises(CredentialsError, match="cannot read") as info:
        resolve_credentials(env={}, home=tmp_path)
    assert len(info.value.tried) == 3 and "config.json" in info.value.tried[-1]


def test_secrets_never_in_repr() -> None:
    c = Credentials("AKID", "super-secret", security_token="sts-token-value")
    for text in (repr(c), str(c), f"{c}"):
        assert "super-secret" not in text and "sts-token-value" not in text
        assert "AKID" in text


@pytest.mark.parametrize(
    ("expiration", "shown"),
    [(1_704_103_200.0, "'2024-01-01T10:00:00Z'"), (1e17, "'1e+17s'"), (float("nan"), "'nan'")],
)
def test_a_repr_shows_any_expiration_and_never_raises(expiration: float, shown: str) -> None:
    # A time no calendar holds (time.gmtime refuses 1e17) is shown as seconds, as a
    # deployment event's time is: printing a key must not raise.
    c = Credentials("AKID", "super-secret", expiration=expiration)
    assert repr(c).endswith(f", expiration={shown})")


def test_empty_values_rejected_without_echoing_secret() -> None:
    with pytest.raises(CredentialsError):
        Credentials("", "x")
    with pytest.raises(CredentialsError) as info:
        Credentials("AK", "")
    assert "AK" in str(info.value)


def _write_cli_profiles(home: Path, current: str, *profiles: dict[str, str]) -> None:
    (home / ".aliyun").mkdir()
    (home / ".aliyun" / "config.json").write_text(
        json.dumps({"current": current, "profiles": list(profiles)})
    )


@pytest.mark.parametrize("token", [None, ""])
def test_sts_profile_without_a_token_is_not_usable(tmp_path: Path, token: str | None) -> None:
    """An StsToken profile lacking its token is not a plain key pair: the chain goes on."""
    profile = {
        "name": "sts",
        "mode": "StsToken",
        "access_key_id": "AKs",
        "access_key_secret": "SKs-secret",
    }
    if token is not None:
        profile["sts_token"] = token
    _write_cli_profiles(tmp_path, "sts", profile)
    with pytest.raises(CredentialsError) as info:
        resolve_credentials(env=NO_NET, home=tmp_path)
    tried = info.value.tried
    assert len(tried) == 6
    assert "config.json" in tried[2] and "'sts'" in tried[2] and "sts_token" in tried[2]
    assert "SKs-secret" not in str(info.value)
    # The current profile was not named: the ini file's [default] is next in the chain.
    _write_ini(tmp_path, INI)
    c = resolve_credentials(env={}, home=tmp_path)
    assert (c.access_key_id, c.security_token) == ("AKdef", None)
    # Named, it falls through to the ini section of that name only.
    with pytest.raises(CredentialsError) as info:
        resolve_credentials(profile="sts", env={}, home=tmp_path)
    assert any("sts_token" in t for t in info.value.tried)
    assert any("no section [sts]" in t for t in info.value.tried)


def test_sts_ini_section_without_a_token_is_not_usable(tmp_path: Path) -> None:
    _write_ini(tmp_path, "[default]\ntype = sts\naccess_key_id = AK\naccess_key_secret = SK\n")
    with pytest.raises(CredentialsError) as info:
        resolve_credentials(env=NO_NET, home=tmp_path)
    assert "credentials.ini" in info.value.tried[3]
    assert "security_token" in info.value.tried[3]


def test_a_key_is_expired_from_its_expiration_on_the_one_rule_everywhere() -> None:
    assert not expired(None, 1e12)  # a key without an end never expires
    assert not expired(100.0, 99.999)
    assert expired(100.0, 100.0) and expired(100.0, 100.5)
