"""Credentials and the default credential chain.

Order when none are given explicitly:

1. environment: ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` /
   ``ALIBABA_CLOUD_SECURITY_TOKEN``, then the older ``ALIYUN_ACCESS_KEY_ID`` /
   ``ALIYUN_ACCESS_KEY_SECRET``;
2. the aliyun CLI file ``~/.aliyun/config.json``: the profile named by ``profile=``,
   else ``ALIBABA_CLOUD_PROFILE``, else its ``current`` profile (modes AK and StsToken);
3. ``~/.alibabacloud/credentials.ini`` (or ``ALIBABA_CLOUD_CREDENTIALS_FILE``): the section
   named like the profile when one was named, else ``default`` (types ``access_key`` and
   ``sts``).

A source that has nothing usable (no file, no such profile, a mode or type aioedge does not
support, an StsToken profile or sts section without its token) is noted and the chain goes
on.  A profile asked for by name is never swapped for another one: if no source has it,
``CredentialsError`` says so and lists, for every source, why it gave nothing (``.tried``).
Only a file that exists but cannot be parsed stops the chain early.

Secrets never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import configparser
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import CredentialsError

__all__ = ["Credentials", "resolve_credentials"]


@dataclass(frozen=True, slots=True)
class Credentials:
    """An AccessKey pair, optionally with an STS security token."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False, kw_only=True)
    source: str = field(default="explicit", compare=False, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.access_key_id, str) or not self.access_key_id:
            raise CredentialsError("access_key_id must be a non-empty string")
        if not isinstance(self.access_key_secret, str) or not self.access_key_secret:
            raise CredentialsError(
                f"access_key_secret for AccessKeyId {self.access_key_id} must be a non-empty string"
            )

    def __repr__(self) -> str:
        token = ", security_token='***'" if self.security_token else ""
        return (
            f"Credentials(access_key_id={self.access_key_id!r}, access_key_secret='***'"
            f"{token}, source={self.source!r})"
        )

    __str__ = __repr__


def _from_env(env: Mapping[str, str]) -> Credentials | None:
    for id_var, secret_var in (
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
        ("ALIYUN_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_SECRET"),
    ):
        ak, sk = env.get(id_var), env.get(secret_var)
        if ak and sk:
            return Credentials(
                ak,
                sk,
                security_token=env.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None,
                source=f"environment ({id_var})",
            )
    return None


def _from_cli_config(path: Path, profile: str | None) -> tuple[Credentials | None, str]:
    """The profile's credentials, or ``None`` and why this file gave none.

    A missing file, a missing profile or a mode aioedge cannot use is not fatal: the chain
    goes on to the ini file.  Only a file that exists but cannot be read stops it.
    """
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "no such file"
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"cannot read {path}: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise CredentialsError(f"cannot read {path}: not a JSON object")
    name = profile or data.get("current") or "default"
    profiles = data.get("profiles")
    for entry in profiles if isinstance(profiles, list) else []:
        if not isinstance(entry, dict) or entry.get("name") != name:
            continue
        mode = entry.get("mode", "AK")
        if mode not in ("AK", "StsToken"):
            return None, f"profile {name!r} uses mode {mode!r}; only AK and StsToken are supported"
        ak, sk = entry.get("access_key_id"), entry.get("access_key_secret")
        if not ak or not sk:
            return None, f"profile {name!r} has no AccessKey pair"
        token = entry.get("sts_token") if mode == "StsToken" else None
        if mode == "StsToken" and not token:
            # Without its token an STS key pair is refused by the service: not usable.
            return None, f"profile {name!r} has mode 'StsToken' but no sts_token"
        return Credentials(ak, sk, security_token=token or None, source=f"{path} [{name}]"), ""
    return None, f"profile {name!r} not found"


def _from_ini(path: Path, profile: str | None) -> tuple[Credentials | None, str]:
    """Section ``profile`` if one was named (and only that one), else ``default``."""
    parser = configparser.ConfigParser()
    try:
        with path.open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except FileNotFoundError:
        return None, "no such file"
    except (OSError, configparser.Error) as exc:
        raise CredentialsError(f"cannot read {path}: {type(exc).__name__}") from None
    name = profile or "default"
    if not parser.has_section(name):
        return None, f"no section [{name}]"
    sec = parser[name]
    kind = sec.get("type", "access_key")
    if kind not in ("access_key", "sts"):
        return None, f"section [{name}] has type {kind!r}; only access_key and sts are supported"
    ak, sk = sec.get("access_key_id"), sec.get("access_key_secret")
    if not ak or not sk:
        return None, f"section [{name}] has no AccessKey pair"
    token = sec.get("security_token") if kind == "sts" else None
    if kind == "sts" and not token:
        return None, f"section [{name}] has type 'sts' but no security_token"
    return Credentials(ak, sk, security_token=token or None, source=f"{path} [{name}]"), ""


def resolve_credentials(
    credentials: Credentials | None = None,
    *,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Credentials:
    """Return ``credentials`` or the first found along the default chain."""
    if credentials is not None:
        if not isinstance(credentials, Credentials):
            raise CredentialsError(
                f"credentials must be aioedge.Credentials, got {type(credentials).__name__}"
            )
        return credentials
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home()) if home is None else home
    explicit_profile = profile
    profile = profile or env.get("ALIBABA_CLOUD_PROFILE") or None
    tried: list[str] = []

    if explicit_profile is None:  # an explicit profile means "that profile", not the env
        tried.append(
            "environment variables ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET, "
            "ALIYUN_ACCESS_KEY_ID/_SECRET"
        )
        found = _from_env(env)
        if found:
            return found
    cli = home / ".aliyun" / "config.json"
    try:
        found, why = _from_cli_config(cli, profile)
    except CredentialsError as exc:
        raise CredentialsError(str(exc), tried=(*tried, str(cli))) from None
    if found:
        return found
    tried.append(f"{cli} ({why})")
    ini = Path(
        env.get("ALIBABA_CLOUD_CREDENTIALS_FILE") or home / ".alibabacloud" / "credentials.ini"
    )
    try:
        found, why = _from_ini(ini, profile)
    except CredentialsError as exc:
        raise CredentialsError(str(exc), tried=(*tried, str(ini))) from None
    if found:
        return found
    tried.append(f"{ini} ({why})")
    where = f" for profile {profile!r}" if profile else ""
    raise CredentialsError(
        f"no credentials found{where}; tried: " + "; ".join(tried), tried=tuple(tried)
    )
