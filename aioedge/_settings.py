"""How settings reach the library: each rule once, asked by every reader.

* :func:`env_true`: a ``true`` / ``false`` switch, in the environment or a config file.
* :func:`pick_region` / :func:`check_region`: what a region id looks like, the default
  (``$ALIBABA_CLOUD_REGION_ID``, else ``cn-shanghai``) and :func:`iot_endpoint`, the API's
  URL for a region.

An error names the setting the value came from: the keyword argument, or the environment
variable when the value was read from there.  Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ._errors import ValidationError

__all__ = [
    "DEFAULT_REGION",
    "IOT_ENDPOINT_ENV",
    "REGION_ENV",
    "check_region",
    "env_true",
    "iot_endpoint",
    "pick_region",
]

#: The region when neither ``region_id=`` nor ``$ALIBABA_CLOUD_REGION_ID`` names one.
DEFAULT_REGION = "cn-shanghai"
REGION_ENV = "ALIBABA_CLOUD_REGION_ID"
#: The command line's fallback for ``--endpoint`` (``EdgeClient`` does not read it); the
#: emulator tells users to export it.
IOT_ENDPOINT_ENV = "ALIBABA_CLOUD_IOT_ENDPOINT"

_REGION = re.compile(r"[a-z]{2,}(-[a-z0-9]+)+")


def env_true(value: str | None) -> bool:
    """``true`` (any case) means yes, as the official SDKs read their switches."""
    return (value or "").strip().lower() == "true"


# --------------------------------------------------------------------------- region


def check_region(value: object, name: str) -> str:
    """``value`` if it looks like a region id (``cn-shanghai``, ``ap-southeast-1``), else a
    ``ValidationError`` naming ``name``."""
    if not isinstance(value, str) or not _REGION.fullmatch(value):
        raise ValidationError(
            f"{name} must look like 'cn-shanghai', got {value!r}", param=name, rule="format"
        )
    return value


def pick_region(given: str | None, env: Mapping[str, str]) -> str:
    """``given`` (``region_id=``), else ``$ALIBABA_CLOUD_REGION_ID``, else ``cn-shanghai``;
    checked, and a bad value is blamed on where it came from."""
    if given:
        return check_region(given, "region_id")
    value = env.get(REGION_ENV)
    if value:
        return check_region(value, REGION_ENV)
    return DEFAULT_REGION


def iot_endpoint(region: str) -> str:
    """The Link IoT Edge API's URL in ``region`` (the client's default endpoint)."""
    return f"https://iot.{region}.aliyuncs.com"
