"""Credentials, and the protocol of the objects that provide them.

A :class:`Credentials` is one key: an AccessKey pair, with an STS SecurityToken and its
expiry when it is temporary.  A :class:`CredentialsProvider` is anything with
``async def get_credentials() -> Credentials``: ``EdgeClient`` asks it before every
attempt, so a provider that refreshes its key (``aioedge._providers``) is never out of
date.  The default chain that picks one is ``aioedge._chain``.

Secrets never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ._errors import CredentialsError
from ._signing import timestamp_text

#: UNIX seconds as ``YYYY-MM-DDTHH:MM:SSZ`` (how STS writes an Expiration); never raises.
format_expiration = timestamp_text

__all__ = ["Credentials", "CredentialsProvider", "expired", "format_expiration"]


def expired(expiration: float | None, now: float) -> bool:
    """Whether a key that stops working at ``expiration`` (None: never) has at ``now``: the
    one rule of a key's end, for the client, its providers and the emulated service alike.
    A key is expired from its Expiration on, that second included."""
    return expiration is not None and now >= expiration


@dataclass(frozen=True, slots=True)
class Credentials:
    """An AccessKey pair, optionally with an STS security token.

    ``expiration`` (UNIX seconds) is when a temporary key stops working, if known;
    ``source`` says where the key came from (never secret).
    """

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False, kw_only=True)
    source: str = field(default="explicit", compare=False, kw_only=True)
    expiration: float | None = field(default=None, compare=False, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.access_key_id, str) or not self.access_key_id:
            raise CredentialsError("access_key_id must be a non-empty string")
        if not isinstance(self.access_key_secret, str) or not self.access_key_secret:
            raise CredentialsError(
                f"access_key_secret for AccessKeyId {self.access_key_id} must be a non-empty string"
            )

    def __repr__(self) -> str:
        token = ", security_token='***'" if self.security_token else ""
        expires = (
            f", expiration={format_expiration(self.expiration)!r}"
            if self.expiration is not None
            else ""
        )
        return (
            f"Credentials(access_key_id={self.access_key_id!r}, access_key_secret='***'"
            f"{token}, source={self.source!r}{expires})"
        )

    __str__ = __repr__


@runtime_checkable
class CredentialsProvider(Protocol):
    """Anything that hands out the key to sign with: ``await provider.get_credentials()``.

    ``EdgeClient(credentials=provider)`` calls it before every attempt, so it must be
    cheap while its key is fresh (cache it) and must never block the event loop.  The
    providers in aioedge also have ``refresh(stale=...)``, which the client calls when the
    service answers ``InvalidSecurityToken.Expired``.
    """

    async def get_credentials(self) -> Credentials: ...
