"""RedisCoordinator: several processes watch the same deployments, each polled by one of them.

``DeploymentMonitor(client, coordinator=RedisCoordinator(url))`` in every process: before a
monitor polls a deployment it must hold that deployment's *lease*; the others leave it alone
and look again every ``lease / 3`` seconds.  Keys, for prefix ``aioedge`` and deployment
``D`` of instance ``I`` (one hash tag, one cluster slot)::

    aioedge:coord:{I:D}:lease   string   "<owner>:<fence>", SET NX PX <lease ms>
    aioedge:coord:{I:D}:fence   counter  INCR at each acquisition: the fencing token
    aioedge:coord:{I:D}:cp      string   the watch checkpoint (JSON) as of the events handed out
    aioedge:coord:{I:D}:done    string   the outcome, once the final event was handed out

A holder renews its leases every ``lease / 3`` seconds.  Each event the monitor hands out is
first *committed*: one script writes the checkpoint only if the lease still holds this
holder's token (owner and fence), so a holder that stalled past its lease (a GC pause, a
frozen VM) and lost it to another cannot write; its event is dropped, and the new holder,
which resumed from the last committed checkpoint, reports it instead.  A process that dies
stops renewing; its leases expire and the others take the deployments over from their
checkpoints: no event lost, none repeated (except in the instant between a commit and the
dead reader's own use of that event).  The final event's commit marks the deployment done,
and every process drops it.

Redis unreachable: :meth:`open` (run by the monitor on entry) raises
:class:`~aioedge.RedisUnavailableError` after ``connect_timeout``, and a failure while
watching ends the monitor's stream with that error — never a hang.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import anyio

from ._argtypes import check_positive
from ._log import get_logger
from ._redis import RedisUnavailableError, _load_redis
from ._settings import redact_url

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["Claim", "RedisCoordinator"]

# KEYS: lease, fence, cp, done.  ARGV: owner, lease ms.
_ACQUIRE = """
local done = redis.call('GET', KEYS[4])
if done then return {'done', done} end
local current = redis.call('GET', KEYS[1])
if current then
  if string.sub(current, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. ':' then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {'held', current, redis.call('GET', KEYS[3]) or '', '0'}
  end
  return {'busy', tostring(redis.call('PTTL', KEYS[1]))}
end
local fence = redis.call('INCR', KEYS[2])
local token = ARGV[1] .. ':' .. fence
if not redis.call('SET', KEYS[1], token, 'NX', 'PX', ARGV[2]) then
  return {'busy', ARGV[2]}
end
return {'held', token, redis.call('GET', KEYS[3]) or '', '1'}
"""

# KEYS: lease.  ARGV: token, lease ms.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lease, cp, done.  ARGV: token, checkpoint, final ("1"/"0"), outcome, keep seconds.
_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[5])
if ARGV[3] == '1' then
  redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5])
  redis.call('DEL', KEYS[1])
end
return 1
"""

# KEYS: lease.  ARGV: token.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class Claim:
    """The answer to "may I poll this deployment?".

    ``state``: ``"held"`` (yes; ``checkpoint`` is the one to resume from when ``acquired``
    is true, i.e. the lease is newly this process's), ``"busy"`` (another process holds it:
    look again in ``retry_in`` seconds) or ``"done"`` (its final event was handed out
    elsewhere, with ``outcome``).
    """

    state: Literal["held", "busy", "done"]
    acquired: bool = False
    checkpoint: dict[str, Any] | None = None
    outcome: str | None = None
    retry_in: float = 0.0


Key = tuple[str, str]


class RedisCoordinator:
    """Leases, fencing and checkpoints in Redis for :class:`~aioedge.DeploymentMonitor`.

    ``lease`` (seconds) is how long a dead process's deployments wait before another takes
    them over; it must exceed the longest stall a live process may have.  ``keep`` is how
    long checkpoints and done markers stay in Redis.  One coordinator serves one monitor.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "aioedge",
        lease: float = 15.0,
        keep: float = 7 * 86400.0,
        connect_timeout: float = 2.0,
        socket_timeout: float = 2.0,
        client: Redis | None = None,
    ) -> None:
        redis_module, self._errors = _load_redis("RedisCoordinator", url)
        for name, seconds in (
            ("lease", lease),
            ("keep", keep),
            ("connect_timeout", connect_timeout),
            ("socket_timeout", socket_timeout),
        ):
            check_positive(seconds, param=name)
        self.url = url
        self.prefix = prefix
        self.lease = float(lease)
        self.keep = float(keep)
        self.owner = uuid.uuid4().hex
        self._redis: Redis = client or redis_module.Redis.from_url(
            url, socket_connect_timeout=connect_timeout, socket_timeout=socket_timeout
        )
        self._own_client = client is None
        self._held: dict[Key, str] = {}  # key → token
        self._scripts: dict[str, Any] = {}

    def __repr__(self) -> str:
        return (
            f"RedisCoordinator({redact_url(self.url)!r}, prefix={self.prefix!r}, "
            f"lease={self.lease})"
        )

    @property
    def _lease_ms(self) -> int:
        """The lease as Redis takes it (PX): whole milliseconds, at least one."""
        return max(1, round(self.lease * 1000))

    @property
    def retry_interval(self) -> float:
        """How often a lease is renewed, and how often a busy one is looked at again."""
        return self.lease / 3

    def held(self) -> set[Key]:
        """The ``(instance_id, deployment_id)`` leases this process believes it holds."""
        return set(self._held)

    # -- keys and calls ----------------------------------------------------------------------

    def _keys(self, key: Key, *names: str) -> list[str]:
        tag = f"{self.prefix}:coord:{{{key[0]}:{key[1]}}}"
        return [f"{tag}:{n}" for n in names]

    async def _run(self, name: str, source: str, keys: list[str], args: list[Any]) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self._redis.register_script(source)
        try:
            return await script(keys=keys, args=args)
        except self._errors as exc:
            raise RedisUnavailableError(
                f"RedisCoordinator: Redis at {redact_url(self.url)} failed: {exc}"
            ) from exc

    # -- the monitor's side ------------------------------------------------------------------

    async def open(self) -> None:
        """Check that Redis answers (RedisUnavailableError if not, within connect_timeout)."""
        try:
            with anyio.fail_after(max(1.0, 2 * self.lease)):
                await self._redis.ping()
        except (TimeoutError, *self._errors) as exc:  # type: ignore[misc]
            raise RedisUnavailableError(
                f"RedisCoordinator: cannot reach Redis at {redact_url(self.url)}: "
                f"{exc or type(exc).__name__}"
            ) from exc

    async def claim(self, key: Key) -> Claim:
        """May this process poll ``key`` now?  Acquires the lease when it is free."""
        if key in self._held:
            return Claim(state="held")
        ms = self._lease_ms
        answer = await self._run(
            "acquire", _ACQUIRE, self._keys(key, "lease", "fence", "cp", "done"), [self.owner, ms]
        )
        state = _text(answer[0])
        if state == "done":
            return Claim(state="done", outcome=_text(answer[1]))
        if state == "busy":
            pttl = int(_text(answer[1]) or 0)
            wait = self.retry_interval if pttl <= 0 else min(self.retry_interval, pttl / 1000)
            return Claim(state="busy", retry_in=max(0.01, wait))
        token = _text(answer[1])
        self._held[key] = token
        raw = _text(answer[2])
        checkpoint = json.loads(raw) if raw else None
        get_logger().info(
            "aioedge.coordinator_lease_acquired",
            instance_id=key[0],
            deployment_id=key[1],
            fence=token.rsplit(":", 1)[-1],
            resumed=checkpoint is not None,
        )
        return Claim(state="held", acquired=True, checkpoint=checkpoint)

    async def commit(
        self, key: Key, checkpoint: Mapping[str, Any], *, final: bool, outcome: str | None
    ) -> bool:
        """Record ``checkpoint`` if this process still holds the lease; False if it lost it."""
        token = self._held.get(key)
        if token is None:
            return False
        ok = await self._run(
            "commit",
            _COMMIT,
            self._keys(key, "lease", "cp", "done"),
            [
                token,
                json.dumps(checkpoint, separators=(",", ":")),
                "1" if final else "0",
                outcome or "",
                max(1, round(self.keep)),
            ],
        )
        if not ok or final:
            self._held.pop(key, None)
        if not ok:
            get_logger().info(
                "aioedge.coordinator_lease_lost", instance_id=key[0], deployment_id=key[1]
            )
        return bool(ok)

    def forget(self, key: Key) -> None:
        """This process no longer watches ``key`` (it ended here, or was given up)."""
        self._held.pop(key, None)

    async def renew(self) -> None:
        """Renew every held lease once; a lease found lost is dropped from the held ones."""
        ms = self._lease_ms
        for key, token in list(self._held.items()):
            ok = await self._run("renew", _RENEW, self._keys(key, "lease"), [token, ms])
            if not ok and self._held.get(key) == token:
                del self._held[key]
                get_logger().info(
                    "aioedge.coordinator_lease_lost", instance_id=key[0], deployment_id=key[1]
                )

    async def keep_leases(self) -> None:
        """Renew the held leases every :attr:`retry_interval` (the monitor runs this)."""
        while True:
            await anyio.sleep(self.retry_interval)
            await self.renew()

    async def close(self) -> None:
        """Hand back the held leases (others take over at once), close the connection."""
        try:
            for key, token in list(self._held.items()):
                await self._run("release", _RELEASE, self._keys(key, "lease"), [token])
        except RedisUnavailableError:
            pass  # the leases expire by themselves
        finally:
            self._held.clear()
            if self._own_client:
                await self._redis.aclose()


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return "" if value is None else str(value)
