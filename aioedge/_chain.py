"""The default credential chain, in the official Alibaba Cloud SDKs' order.

When ``EdgeClient`` is given no credentials (``credentials=None``) it takes the first
source that is configured:

1. environment keys: ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``
   (``ALIBABA_CLOUD_SECURITY_TOKEN``), then the older ``ALIYUN_ACCESS_KEY_ID`` /
   ``ALIYUN_ACCESS_KEY_SECRET``;
2. OIDC (RRSA on ACK) when ``ALIBABA_CLOUD_ROLE_ARN``, ``ALIBABA_CLOUD_OIDC_PROVIDER_ARN``
   and ``ALIBABA_CLOUD_OIDC_TOKEN_FILE`` are set (some but not all of them: an error
   naming the missing ones);
3. the aliyun CLI file ``~/.aliyun/config.json`` (unless
   ``ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true``): the profile named by ``profile=``, else
   ``ALIBABA_CLOUD_PROFILE``, else its ``current`` one; modes AK, StsToken, RamRoleArn,
   EcsRamRole, OIDC, ChainableRamRoleArn;
4. ``~/.alibabacloud/credentials.ini`` (or ``ALIBABA_CLOUD_CREDENTIALS_FILE``): the
   section named like the profile when one was named, else ``default``; types
   access_key, sts, ram_role_arn, ecs_ram_role, oidc_role_arn;
5. the ECS instance's RAM role (unless ``ALIBABA_CLOUD_ECS_METADATA_DISABLED=true``;
   ``ALIBABA_CLOUD_ECS_METADATA`` names the role, ``ALIBABA_CLOUD_IMDSV1_DISABLED=true``
   forbids the IMDSv1 fallback);
6. ``ALIBABA_CLOUD_CREDENTIALS_URI``.

Steps 1-4 are decided when the client is built: a fixed key is used as it is, a role is
a refreshing provider (``aioedge._providers``).  A source that has nothing (no file, no
such profile, an AK profile without its pair) is noted and the chain goes on; a source
that is configured wrongly (an unknown mode, a RamRoleArn profile without its role, a
half-set OIDC environment) is a ``CredentialsError`` naming it, at once.  Steps 5-6 need
the network, so they are tried at the first call, in order, and the first that answers
is kept.  A profile asked for by name is never swapped for another source.

Secrets never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import configparser
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._credentials import Credentials, CredentialsProvider
from ._errors import CredentialsError, ValidationError
from ._log import get_logger
from ._providers import (
    EcsRamRoleProvider,
    OIDCRoleArnProvider,
    RamRoleArnProvider,
    StaticCredentialsProvider,
    URICredentialsProvider,
    _LoopLock,
)
from ._settings import env_true, env_value

__all__ = ["ChainProvider", "default_credentials_provider", "resolve_credentials"]

Clock = Callable[[], float]
CLI_MODES = ("AK", "StsToken", "RamRoleArn", "EcsRamRole", "OIDC", "ChainableRamRoleArn")
INI_TYPES = ("access_key", "sts", "ram_role_arn", "ecs_ram_role", "oidc_role_arn")
_OIDC_VARS = (
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
)
Found = Credentials | CredentialsProvider
#: A credentials file's reader: what the profile found in it, else ``None`` and why not.
ReadFile = Callable[[Path, str | None, Mapping[str, str], Clock], tuple[Found | None, str]]


def _from_env(env: Mapping[str, str]) -> Credentials | None:
    for id_var, secret_var in (
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
        ("ALIYUN_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_SECRET"),
    ):
        ak, sk = env_value(env, id_var), env_value(env, secret_var)
        if ak and sk:
            return Credentials(
                ak,
                sk,
                security_token=env_value(env, "ALIBABA_CLOUD_SECURITY_TOKEN"),
                source=f"environment ({id_var})",
            )
    return None


def _from_oidc_env(env: Mapping[str, str], clock: Clock) -> OIDCRoleArnProvider | None:
    if not any(env_value(env, var) for var in _OIDC_VARS):
        return None
    return OIDCRoleArnProvider(env=env, clock=clock)  # names what is missing, if anything


def _duration(value: Any, where: str) -> int:
    """``expired_seconds`` as an int (the CLI writes a number, people write strings)."""
    if value is None or value == "" or value == 0:
        return 3600
    try:
        return int(value)
    except (TypeError, ValueError):
        raise CredentialsError(
            f"{where}: expired_seconds must be a number of seconds, got {value!r}", source=where
        ) from None


def _bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    return env_true(str(value))


def _need(entry: Mapping[str, Any], names: tuple[str, ...], where: str, what: str) -> None:
    missing = [n for n in names if not isinstance(entry.get(n), str) or not entry.get(n)]
    if missing:
        raise CredentialsError(f"{where}: {what} needs {', '.join(missing)}", source=where)


def _fixed_key(
    entry: Mapping[str, Any], token_key: str | None, what: str, kind: str, where: str
) -> tuple[Credentials | None, str]:
    """The AccessKey pair of a profile or section, with its token when ``token_key`` names
    one; ``None`` and why when something is missing (the chain goes on)."""
    ak, sk = entry.get("access_key_id"), entry.get("access_key_secret")
    if not ak or not sk:
        return None, f"{what} has no AccessKey pair"
    token = entry.get(token_key) if token_key else None
    if token_key and not token:
        # Without its token an STS key pair is refused by the service: not usable.
        return None, f"{what} has {kind} but no {token_key}"
    return Credentials(ak, sk, security_token=token or None, source=where), ""


def _wrap(where: str, build: Callable[[], Found]) -> Found:
    """Build a provider, naming the file and profile in a ValidationError it raises."""
    try:
        return build()
    except ValidationError as exc:
        raise CredentialsError(f"{where}: {exc.message}", source=where) from None


class _CliConfig:
    """``~/.aliyun/config.json``, parsed once; :meth:`profile` builds a profile's source."""

    def __init__(self, path: Path, data: dict[str, Any], env: Mapping[str, str], clock: Clock):
        self.path = path
        self.data = data
        self.env = env
        self.clock = clock

    def entry(self, name: str) -> dict[str, Any] | None:
        profiles = self.data.get("profiles")
        for entry in profiles if isinstance(profiles, list) else []:
            if isinstance(entry, dict) and entry.get("name") == name:
                return entry
        return None

    def profile(self, name: str, chain: tuple[str, ...] = ()) -> tuple[Found | None, str]:
        entry = self.entry(name)
        if entry is None:
            return None, f"profile {name!r} not found"
        where = f"{self.path} [{name}]"
        mode = entry.get("mode", "AK")
        if mode not in CLI_MODES:
            raise CredentialsError(
                f"{where}: unknown mode {mode!r} (supported: {', '.join(CLI_MODES)})",
                source=where,
            )
        if mode in ("AK", "StsToken"):
            token_key = "sts_token" if mode == "StsToken" else None
            return _fixed_key(entry, token_key, f"profile {name!r}", f"mode {mode!r}", where)
        sts: dict[str, Any] = {
            "role_session_name": entry.get("ram_session_name") or None,
            "duration_seconds": _duration(entry.get("expired_seconds"), where),
            "policy": entry.get("policy") or None,
            "sts_region": entry.get("sts_region") or None,
            "enable_vpc": _bool(entry.get("enable_vpc")),
            "env": self.env,
            "clock": self.clock,
        }
        if mode == "EcsRamRole":
            return _wrap(
                where,
                lambda: EcsRamRoleProvider(
                    entry.get("ram_role_name") or None, env=self.env, clock=self.clock
                ),
            ), ""
        if mode == "OIDC":
            _need(
                entry,
                ("ram_role_arn", "oidc_provider_arn", "oidc_token_file"),
                where,
                f"mode {mode}",
            )
            return _wrap(
                where,
                lambda: OIDCRoleArnProvider(
                    entry["ram_role_arn"],
                    entry["oidc_provider_arn"],
                    entry["oidc_token_file"],
                    **sts,
                ),
            ), ""
        if mode == "RamRoleArn":
            _need(
                entry, ("access_key_id", "access_key_secret", "ram_role_arn"), where, f"mode {mode}"
            )
            source: Found = Credentials(
                entry["access_key_id"], entry["access_key_secret"], source=where
            )
        else:  # ChainableRamRoleArn
            _need(entry, ("source_profile", "ram_role_arn"), where, f"mode {mode}")
            parent = entry["source_profile"]
            if parent in (*chain, name):
                raise CredentialsError(
                    f"{where}: source_profile {parent!r} loops back "
                    f"({' -> '.join((*chain, name, parent))})",
                    source=where,
                )
            found, why = self.profile(parent, (*chain, name))
            if found is None:
                raise CredentialsError(f"{where}: source_profile {parent!r}: {why}", source=where)
            source = found
        return _wrap(
            where,
            lambda: RamRoleArnProvider(
                entry["ram_role_arn"],
                source=source,
                external_id=entry.get("external_id") or None,
                **sts,
            ),
        ), ""


def _from_cli_config(
    path: Path, profile: str | None, env: Mapping[str, str], clock: Clock
) -> tuple[Found | None, str]:
    """The profile's source, or ``None`` and why this file gave none.

    A missing file, a missing profile or an AK profile without its pair is not fatal:
    the chain goes on to the ini file.  A file that cannot be read, an unknown mode or a
    role profile without its fields stops it.
    """
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "no such file"
    except (OSError, ValueError) as exc:
        raise CredentialsError(
            f"cannot read {path}: {type(exc).__name__}", source=str(path)
        ) from None
    if not isinstance(data, dict):
        raise CredentialsError(f"cannot read {path}: not a JSON object", source=str(path))
    name = profile or data.get("current") or "default"
    return _CliConfig(path, data, env, clock).profile(str(name))


def _from_ini(
    path: Path, profile: str | None, env: Mapping[str, str], clock: Clock
) -> tuple[Found | None, str]:
    """Section ``profile`` if one was named (and only that one), else ``default``."""
    parser = configparser.ConfigParser()
    try:
        with path.open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except FileNotFoundError:
        return None, "no such file"
    except (OSError, configparser.Error) as exc:
        raise CredentialsError(
            f"cannot read {path}: {type(exc).__name__}", source=str(path)
        ) from None
    name = profile or "default"
    if not parser.has_section(name):
        return None, f"no section [{name}]"
    # Inline comments (``key = value # note``) are not part of the value.
    sec = {k: v.split("#", 1)[0].strip() for k, v in parser[name].items()}
    where = f"{path} [{name}]"
    kind = sec.get("type") or "access_key"
    if kind not in INI_TYPES:
        raise CredentialsError(
            f"{where}: unknown type {kind!r} (supported: {', '.join(INI_TYPES)})", source=where
        )
    if kind in ("access_key", "sts"):
        token_key = "security_token" if kind == "sts" else None
        return _fixed_key(sec, token_key, f"section [{name}]", f"type {kind!r}", where)
    common: dict[str, Any] = {
        "role_session_name": sec.get("role_session_name") or None,
        "policy": sec.get("policy") or None,
        "env": env,
        "clock": clock,
    }
    if kind == "ecs_ram_role":
        return _wrap(
            where, lambda: EcsRamRoleProvider(sec.get("role_name") or None, env=env, clock=clock)
        ), ""
    if kind == "oidc_role_arn":
        _need(sec, ("role_arn", "oidc_provider_arn", "oidc_token_file_path"), where, f"type {kind}")
        return _wrap(
            where,
            lambda: OIDCRoleArnProvider(
                sec["role_arn"], sec["oidc_provider_arn"], sec["oidc_token_file_path"], **common
            ),
        ), ""
    _need(sec, ("access_key_id", "access_key_secret", "role_arn"), where, f"type {kind}")
    key = Credentials(sec["access_key_id"], sec["access_key_secret"], source=where)
    return _wrap(where, lambda: RamRoleArnProvider(sec["role_arn"], source=key, **common)), ""


class ChainProvider:
    """The network sources of the chain (ECS metadata, a credentials URI), tried in order
    at the first ``get_credentials()``; the first that answers is kept."""

    def __init__(self, providers: tuple[Any, ...], tried: tuple[str, ...]) -> None:
        self.providers = providers
        self.tried = tried
        self.chosen: Any = None
        self._locks = _LoopLock()

    @property
    def scope(self) -> str:
        return str(getattr(self.chosen, "scope", "default credentials chain"))

    async def get_credentials(self) -> Credentials:
        chosen = self.chosen
        if chosen is not None:
            return await chosen.get_credentials()  # type: ignore[no-any-return]
        async with self._locks.get():
            if self.chosen is not None:
                return await self.chosen.get_credentials()  # type: ignore[no-any-return]
            failures: list[str] = []
            for provider in self.providers:
                try:
                    creds: Credentials = await provider.get_credentials()
                except CredentialsError as err:
                    failures.append(str(err))
                    continue
                self.chosen = provider
                get_logger().info("aioedge.credentials_source", source=provider.source)
                return creds
            tried = (*self.tried, *failures)
            raise CredentialsError("no credentials found; tried: " + "; ".join(tried), tried=tried)

    async def refresh(self, *, stale: Credentials | None = None) -> Credentials:
        refresh = getattr(self.chosen, "refresh", None)
        if refresh is None:
            return await self.get_credentials()
        return await refresh(stale=stale)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        names = ", ".join(type(p).__name__ for p in self.providers)
        chosen = type(self.chosen).__name__ if self.chosen is not None else None
        return f"ChainProvider([{names}], chosen={chosen})"


def resolve_credentials(
    credentials: Credentials | CredentialsProvider | None = None,
    *,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    clock: Clock = time.time,
) -> Found:
    """``credentials`` as given, else what the default chain finds: a fixed
    ``Credentials`` or a provider.  Raises ``CredentialsError`` for a source configured
    wrongly, or when nothing is configured at all."""
    if credentials is not None:
        if isinstance(credentials, (Credentials, CredentialsProvider)):
            return credentials
        raise CredentialsError(
            f"credentials must be aioedge.Credentials, a provider (an object with "
            f"async get_credentials()) or None, got {type(credentials).__name__}"
        )
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home()) if home is None else home
    explicit_profile = profile
    profile = profile or env_value(env, "ALIBABA_CLOUD_PROFILE")
    tried: list[str] = []

    if explicit_profile is None:  # an explicit profile means "that profile", not the env
        tried.append(
            "environment variables ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET, "
            "ALIYUN_ACCESS_KEY_ID/_SECRET"
        )
        found: Found | None = _from_env(env)
        if found is not None:
            return found
        tried.append("OIDC environment (ALIBABA_CLOUD_ROLE_ARN, ...)")
        found = _from_oidc_env(env, clock)
        if found is not None:
            return found
    files: list[tuple[Path, ReadFile]] = []
    cli = home / ".aliyun" / "config.json"
    if env_true(env.get("ALIBABA_CLOUD_CLI_PROFILE_DISABLED")):
        tried.append(f"{cli} (disabled by ALIBABA_CLOUD_CLI_PROFILE_DISABLED)")
    else:
        files.append((cli, _from_cli_config))
    ini = Path(
        env_value(env, "ALIBABA_CLOUD_CREDENTIALS_FILE")
        or home / ".alibabacloud" / "credentials.ini"
    )
    files.append((ini, _from_ini))
    for path, read in files:
        try:
            found, why = read(path, profile, env, clock)
        except CredentialsError as exc:
            raise CredentialsError(str(exc), tried=(*tried, str(path)), source=exc.source) from None
        if found is not None:
            return found
        tried.append(f"{path} ({why})")
    if profile:
        raise CredentialsError(
            f"no credentials found for profile {profile!r}; tried: " + "; ".join(tried),
            tried=tuple(tried),
        )
    network: list[Any] = []
    if env_true(env.get("ALIBABA_CLOUD_ECS_METADATA_DISABLED")):
        tried.append("ECS metadata (disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED)")
    else:
        network.append(EcsRamRoleProvider(env=env, clock=clock))
    if env_value(env, "ALIBABA_CLOUD_CREDENTIALS_URI"):
        network.append(URICredentialsProvider(env=env, clock=clock))
    else:
        tried.append("ALIBABA_CLOUD_CREDENTIALS_URI (not set)")
    if not network:
        raise CredentialsError(
            "no credentials found; tried: " + "; ".join(tried), tried=tuple(tried)
        )
    return ChainProvider(tuple(network), tuple(tried))


def default_credentials_provider(
    profile: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    clock: Clock = time.time,
) -> CredentialsProvider:
    """The provider the default chain picks (see the module text), for
    ``EdgeClient(credentials=...)`` or anything else that signs Alibaba Cloud requests."""
    found = resolve_credentials(None, profile=profile, env=env, home=home, clock=clock)
    if isinstance(found, Credentials):
        return StaticCredentialsProvider(found)
    return found
