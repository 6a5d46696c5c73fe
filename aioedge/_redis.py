"""RedisRateLimiter: the same per-Action slots, shared by every process and host on one Redis.

The slot rule and the adaptive curve are those of ``_ratelimit`` (read its docstring for why
slots and not a token bucket); here they live in Redis so that all the account's processes
draw from one quota.  Every decision is one Lua script, atomic, timed by Redis' own ``TIME``
(no host clock is trusted), touching only the keys it is given in ``KEYS``: the three keys of
one (scope, Action) share a hash tag, ``{scope:action}``, so they sit in one cluster slot.

Keys, for prefix ``aioedge``, scope ``AK`` and Action ``GetEdgeInstance``::

    aioedge:{AK:GetEdgeInstance}:inflight   sorted set  token → lease expiry (request in flight)
    aioedge:{AK:GetEdgeInstance}:held       sorted set  token → end of its 1-s hold
    aioedge:{AK:GetEdgeInstance}:rate       hash        t_fail, w_max, k of the CUBIC curve

A request in flight holds a *lease*: if its process dies, the slot frees itself when the lease
ends instead of blocking the quota forever.  The lease must therefore exceed the client's
per-attempt timeout (``attempt_timeout``, and any ``slot(..., timeout=...)``, are checked
against it).  Acquire answers "granted k slots" or "wait this long" (until the earliest hold
ends, or until the curve allows one more slot); when every slot is in flight no time is known,
and the waiters look again after ``poll_interval`` (or as soon as a request of their own
process finishes).  Inside one process, waiters queue FIFO on a lock and only the head
talks to Redis.  A slot granted to a waiter that was cancelled while the script ran is handed
straight back (mode ``0``: no hold), and so is one whose attempt sent nothing
(``never_sent``), and, best effort, one whose acquire failed with a Redis error after it may
have run (a reply timed out or a connection cut): the hand-back is sent in the background on a
fresh connection, and if Redis cannot take it either, the lease frees the slot.  A slot whose
attempt got no answer (``answer_lost``) is held ``window + max(attempt_timeout, time in
flight, its timeout)``.

Needs Redis >= 5: the scripts read ``TIME`` and then write (effects replication).

When Redis cannot be reached: ``on_unavailable="fail"`` raises ``RedisUnavailableError`` (a
``TransportError`` with ``maybe_executed=False``: nothing was sent); ``"local"`` logs a warning
and falls back to an in-process ``LocalRateLimiter`` until Redis answers again.

Every slot also takes a slot of that in-process limiter first, whichever side grants it: the
local lane thus carries every slot this process holds, granted by Redis or by the fallback,
across each switch.  Redis forgets its slots when it restarts (or is flushed), and the
fallback never saw those Redis granted; without the local lane either switch could let one
process send 2Q in a second.  With it, one process alone is never throttled, whatever Redis
does.  A hand-back or a release that Redis could not take (it was down, or stalled: the
acquire that timed out may still be granted when Redis wakes up) is sent again once Redis
answers again, so those slots do not stay held until their lease ends.

**When Redis loses its state** (``FLUSHALL``, a restart without persistence, a failover to an
empty replica) the slots it granted are in no sorted set any more, yet their holders, in any
number of processes, still count on them: without more, the next arrivals would be granted Q
slots afresh, and the service would see up to Q per limiter in one second.  So each lane has a
fourth key, ``aioedge:{AK:GetEdgeInstance}:since``: the first moment Redis may grant its
slots.  It never expires.  An acquire that finds it missing cannot tell a lane never used
from one whose state was lost: it sets it to ``now + window`` and grants nothing; every
acquire before that moment, from any process, is told to wait.

Proof (``SlotWindow``'s, on Redis' clock): take the arrivals inside any window ``[t, t + 1)``
and let τ be the latest of their grant times (τ < t + 1).  Each of those requests held its slot
at τ (granted by τ, released no earlier than ``arrival + 1 ≥ t + 1 > τ``).  If Redis lost
nothing between their grants and τ, all were in its sets when it granted at τ: at most Q.
Otherwise let L be the last loss before τ and D the first acquire after it (D ≤ τ: the grant
at τ is one).  D found no ``since`` key (lost with the rest), set it to ``D + window``, and
nothing removes it before the next loss, so τ ≥ D + window = D + 1 + margin.  A request
granted before L arrived by ``D + margin ≤ τ - 1 < t`` (the assumption below): it is not in
the window.  So the window holds only requests granted after L, all in Redis' sets at τ: at
most Q.  ∎

The one assumption: a request granted before the loss arrives at the service by ``margin``
after the first acquire that follows the loss (its grant, its send and its arrival came before
the loss, as nearly every request's do: they are milliseconds apart).  A request still on its
way then counts against its own process's later calls (the local lane holds its slot), not
against other processes'.  The cost: the first call of each (scope, Action) on a Redis that
has no ``since`` key for it -- a fresh Redis, a flushed or restarted one -- waits one window,
once for the life of Redis' data.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anyio

from ._argtypes import check_positive
from ._errors import TransportError
from ._log import get_logger
from ._ratelimit import (
    _MIN_DELAY,
    DEFAULT_ATTEMPT_TIMEOUT,
    DEFAULT_MARGIN,
    WINDOW,
    AdaptiveConfig,
    LaneState,
    LocalRateLimiter,
    _check_timeout,
    _Limiter,
    _LocalSlot,
    answer_lost,
    enter_within,
    hinted_hold,
    never_sent,
)
from ._settings import is_redis_url, redact_url

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisRateLimiter", "RedisUnavailableError"]

OnUnavailable = Literal["fail", "local"]
# How a slot goes back to Redis: "0" never sent (no hold), "1" answered (the window, or the
# service's retry-after), "2" no answer (the lost hold).
_Mode = Literal["0", "1", "2"]

# Releases kept to send again once Redis answers (see RedisRateLimiter._remember).
_MAX_UNRETURNED = 1024


class RedisUnavailableError(TransportError):
    """The shared limiter's Redis could not be used; the request was not sent."""

    def __init__(self, message: str, *, action: str | None = None) -> None:
        super().__init__(message, action=action, maybe_executed=False)

    def __reduce__(self) -> Any:
        return (type(self), (self.message,), {"action": self.action})


def _load_redis(needed_by: str, url: str) -> tuple[Any, tuple[type[BaseException], ...]]:
    """``redis.asyncio`` and the errors that mean Redis cannot be used, for ``needed_by``
    (an ``ImportError`` naming the extra without the package) on ``url`` (a ``ValueError``
    if it is not a Redis URL)."""
    try:
        import redis.asyncio
        import redis.exceptions
    except ImportError:
        raise ImportError(
            f"{needed_by} needs the redis package: pip install 'aioedge[redis]'"
        ) from None
    if not is_redis_url(url):
        raise ValueError(f"not a Redis URL: {redact_url(url)!r}")
    return redis.asyncio, (redis.exceptions.RedisError, OSError)


# --------------------------------------------------------------------------- scripts

# Shared Lua: Redis' clock, the CUBIC rate (same formula as _ratelimit.CubicRate) and the
# slot count.  Numbers go back to Redis as strings: Lua numbers would be truncated to ints.
_LUA_COMMON = """
local function now_s()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function cbrt(x)
  if x < 0 then return -((-x) ^ (1 / 3)) end
  return x ^ (1 / 3)
end
local function curve(key)
  local st = redis.call('HMGET', key, 't_fail', 'w_max', 'k')
  if not st[1] then return nil end
  return tonumber(st[1]), tonumber(st[2]), tonumber(st[3])
end
local function rate_at(key, now, qps, scale, min_rate)
  local t_fail, w_max, k = curve(key)
  if not t_fail then return qps end
  local r = scale * (now - t_fail - k) ^ 3 + w_max
  return math.min(qps, math.max(r, min_rate))
end
local function capacity(rate, max_slots)
  return math.min(max_slots, math.max(1, math.ceil(rate - 1e-9)))
end
"""

# KEYS: inflight, held, rate, since.  ARGV: token, qps, max_slots, lease, scale, min_rate, n,
# window.  Grants up to n slots, as tokens "<token>:1" .. "<token>:k".
# -> {k, now} k >= 1 granted | {0, wait} wait seconds | {0, "-1"} only an answer can free one
# | {-1, wait} the lane had no "since" key: none is granted for one window (see the docstring).
_LUA_ACQUIRE = (
    _LUA_COMMON
    + """
local now = now_s()
local since = redis.call('GET', KEYS[4])
if not since then
  local window = tonumber(ARGV[8])
  redis.call('SET', KEYS[4], tostring(now + window))
  return {-1, tostring(window)}
end
since = tonumber(since)
if now < since then return {0, tostring(since - now)} end
local qps, max_slots = tonumber(ARGV[2]), tonumber(ARGV[3])
local lease, scale, min_rate = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local rate = rate_at(KEYS[3], now, qps, scale, min_rate)
local cap = capacity(rate, max_slots)
local inflight = redis.call('ZCARD', KEYS[1])
local held = redis.call('ZCARD', KEYS[2])
if inflight + held < cap then
  local k = math.min(cap - inflight - held, tonumber(ARGV[7]))
  for i = 1, k do
    redis.call('ZADD', KEYS[1], now + lease, ARGV[1] .. ':' .. i)
  end
  redis.call('PEXPIRE', KEYS[1], math.ceil(lease * 1000) + 1000)
  return {k, tostring(now)}
end
local wait = nil
local need = inflight + held - cap + 1
if need <= held then
  local r = redis.call('ZRANGE', KEYS[2], need - 1, need - 1, 'WITHSCORES')
  wait = tonumber(r[2]) - now
end
local t_fail, w_max, k = curve(KEYS[3])
if t_fail and cap < max_slots and cap < qps then
  local t = t_fail + k + cbrt((cap + 1e-6 - w_max) / scale)
  if not wait or t - now < wait then wait = math.max(t - now, 0) end
end
if not wait then return {0, '-1'} end
return {0, tostring(wait)}
"""
)

# KEYS: inflight, held, rate.
# ARGV: token, qps, max_slots, window, scale, min_rate, mode, least hold, lease.
# mode '0': never sent (no hold); '1': answered (the window); '2': no answer (the lost hold:
# at least lost_hold, and window + the time since the grant, read from the lease's expiry).
_LUA_RELEASE = (
    _LUA_COMMON
    + """
local now = now_s()
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[7] == '0' then return tostring(now) end
local qps, max_slots, window = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local rate = rate_at(KEYS[3], now, qps, tonumber(ARGV[5]), tonumber(ARGV[6]))
local hold = window * math.max(1, capacity(rate, max_slots) / rate)
-- mode '1': ARGV[8] is the service's retry-after hint (0 without one); '2': the lost hold.
hold = math.max(hold, tonumber(ARGV[8]))
if ARGV[7] == '2' then
  if expiry then
    local granted = tonumber(expiry) - tonumber(ARGV[9])
    hold = math.max(hold, window + now - granted)
  end
end
redis.call('ZADD', KEYS[2], now + hold, ARGV[1])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[2], math.ceil((tonumber(last[2]) - now) * 1000) + 1000)
return tostring(now)
"""
)

# KEYS: rate.  ARGV: qps, beta, scale, min_rate, cooldown.  -> 1 decreased | 0 same event.
_LUA_THROTTLED = (
    _LUA_COMMON
    + """
local now = now_s()
local qps, beta, scale = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local min_rate, cooldown = tonumber(ARGV[4]), tonumber(ARGV[5])
local t_fail = curve(KEYS[1])
if t_fail and now - t_fail < cooldown then return 0 end
local w = rate_at(KEYS[1], now, qps, scale, min_rate)
local k = cbrt(w * (1 - beta) / scale)
redis.call('HSET', KEYS[1], 't_fail', tostring(now), 'w_max', tostring(w), 'k', tostring(k))
-- Forget the event once the curve is back at the quota.
local back = k + cbrt((qps - w) / scale)
redis.call('PEXPIRE', KEYS[1], math.ceil((back + 1) * 1000))
return 1
"""
)

# KEYS: rate.  ARGV: qps, scale, min_rate.  -> the current rate.
_LUA_RATE = (
    _LUA_COMMON
    + """
return tostring(rate_at(KEYS[1], now_s(), tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])))
"""
)


# --------------------------------------------------------------------------- per-loop state


@dataclass(slots=True)
class _LocalQueue:
    """This process's waiters of one lane, on one loop: FIFO, and a wake-up on our releases."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(slots=True)
class _LoopState:
    """Things bound to one event loop: the Redis client (its sockets) and the queues."""

    client: Redis
    scripts: dict[str, Any]
    queues: dict[tuple[str, str], _LocalQueue] = field(default_factory=dict)
    background: set[asyncio.Task[Any]] = field(default_factory=set)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Grant:
    """A slot Redis granted (or may have granted, its reply lost): the lane, the QPS it was
    asked with and its token, all a release needs."""

    scope: str
    action: str
    qps: float
    token: str


@dataclass(slots=True, eq=False)
class _RedisSlot:
    """One request's slot: this process's local slot, then Redis' (see the module docstring).
    ``timeout``: its per-attempt timeout (for the lost hold); ``wait``: the longest its entry
    may wait."""

    limiter: RedisRateLimiter
    scope: str
    action: str
    qps: float
    timeout: float | None
    wait: float | None
    state: _LoopState | None = field(default=None, init=False)
    grant: _Grant | None = field(default=None, init=False)
    local: _LocalSlot | None = field(default=None, init=False)

    async def __aenter__(self) -> None:
        if self.wait is None:
            await self._enter()
        else:  # a waiter cancelled at the limit gives its turn back
            await enter_within(self._enter, self.wait)

    async def _enter(self) -> None:
        lim = self.limiter
        # This process's own slot first (see the module docstring): it is the whole slot
        # while Redis is away, and it carries the slots held on either side across a switch.
        local = lim._fallback.slot(self.scope, self.action, self.qps, timeout=self.timeout)
        assert isinstance(local, _LocalSlot)  # qps is finite here, as in the fallback
        await local.__aenter__()
        try:
            if not lim._use_local():
                self.state = lim._state()
                try:
                    self.grant = await lim._acquire(self.state, self.scope, self.action, self.qps)
                except lim._redis_errors as exc:
                    lim._unavailable(exc, self.action)  # raises in "fail" mode
        except BaseException:
            local.give_back()  # nothing was sent with it
            raise
        self.local = local

    async def __aexit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        local, self.local = self.local, None
        try:
            if self.grant is not None and self.state is not None:
                grant, self.grant = self.grant, None
                lim = self.limiter
                # Any exit counts as "maybe arrived" (the client validates before it enters)
                # but one that sent nothing (no hold); one without an answer as "may still
                # arrive": the lost hold.
                mode: _Mode = "0" if never_sent(exc) else "2" if answer_lost(exc) else "1"
                if mode == "2":
                    hold = lim._window + max(lim._attempt_timeout, self.timeout or 0.0)
                else:
                    hold = hinted_hold(exc)  # the service's retry-after, else 0
                with anyio.CancelScope(shield=True):
                    await lim._release(self.state, grant, mode=mode, lost_hold=hold)
        finally:
            if local is not None:
                await local.__aexit__(_type, exc, _tb)  # the same rules, in this process


class RedisRateLimiter(_Limiter):
    """Per-Action quotas shared by every process and host that uses the same Redis.

    ``url``: a ``redis://`` / ``rediss://`` / ``unix://`` URL (or pass ``client=``, a
    ``redis.asyncio.Redis``, used on one event loop).  ``prefix`` namespaces the keys.
    ``on_unavailable``: ``"fail"`` raises ``RedisUnavailableError``; ``"local"`` falls back to
    an in-process limiter (with a warning) and tries Redis again after ``retry_after`` seconds.
    ``lease`` bounds how long a crashed process can keep a slot; it must exceed the client's
    per-attempt timeout, ``attempt_timeout`` (default 10 s, checked here; a ``slot(...,
    timeout=...)`` is checked too, and so is each client that uses the limiter, through
    ``expect_attempt_timeout``).  ``overrides``, ``margin``, ``adaptive`` and
    ``attempt_timeout`` as for LocalRateLimiter.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "aioedge",
        on_unavailable: OnUnavailable = "fail",
        overrides: Mapping[str, float] | None = None,
        margin: float = DEFAULT_MARGIN,
        adaptive: AdaptiveConfig | None = None,
        lease: float = 60.0,
        attempt_timeout: float = DEFAULT_ATTEMPT_TIMEOUT,
        poll_interval: float = 0.2,
        connect_timeout: float = 2.0,
        socket_timeout: float = 2.0,
        retry_after: float = 5.0,
        client: Redis | None = None,
    ) -> None:
        self._redis_module, self._redis_errors = _load_redis("RedisRateLimiter", url)
        if on_unavailable not in ("fail", "local"):
            raise ValueError(f"on_unavailable must be 'fail' or 'local', got {on_unavailable!r}")
        super().__init__(overrides, margin, adaptive, attempt_timeout)
        for name, seconds in (
            ("lease", lease),
            ("poll_interval", poll_interval),
            ("connect_timeout", connect_timeout),
            ("socket_timeout", socket_timeout),
            ("retry_after", retry_after),
        ):
            check_positive(seconds, param=name)  # NaN too: it would fail at the first slot
        if lease <= attempt_timeout:
            # A lease ending while its request is still in flight would free the slot early.
            raise ValueError(
                f"lease ({lease} s) must exceed attempt_timeout ({attempt_timeout} s), "
                "the client's per-attempt timeout"
            )
        if poll_interval > WINDOW:
            # A waiter must see a slot's hold end before the hold ends (see module docstring).
            raise ValueError(f"poll_interval must be at most {WINDOW} s")
        self.url = url
        self.prefix = prefix
        self.on_unavailable: OnUnavailable = on_unavailable
        self._lease = lease
        self._poll = poll_interval
        self._connect_timeout = connect_timeout
        self._socket_timeout = socket_timeout
        self._retry_after = retry_after
        self._given_client = client
        self._fallback = LocalRateLimiter(
            overrides=overrides,
            margin=margin,
            adaptive=self._adaptive,
            attempt_timeout=attempt_timeout,
        )
        self._down_until = 0.0
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._pid = os.getpid()
        # The QPS each lane was last used with: report_throttled() is told only the names.
        self._qps_seen: dict[tuple[str, str], float] = {}
        # Releases and hand-backs Redis could not take, to send again once it answers: the
        # time they were due (monotonic), the grant, mode and lost hold.
        self._unreturned: list[tuple[float, _Grant, _Mode, float]] = []

    def __repr__(self) -> str:
        return (
            f"RedisRateLimiter({redact_url(self.url)!r}, prefix={self.prefix!r}, "
            f"on_unavailable={self.on_unavailable!r})"
        )

    async def __aenter__(self) -> RedisRateLimiter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close this loop's Redis connections (a client passed in is left to its owner)."""
        loop = asyncio.get_running_loop()
        state = self._states.pop(loop, None)
        if state is None:
            return
        for task in list(state.background):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        if self._given_client is None:
            await state.client.aclose()

    @property
    def lease(self) -> float:
        return self._lease

    def expect_attempt_timeout(self, seconds: float) -> None:
        """A client with this per-attempt timeout uses the limiter: its lease must exceed the
        timeout (ValueError otherwise), and lost slots are never held less."""
        _check_timeout("attempt_timeout", seconds)
        if self._lease <= seconds:
            raise ValueError(
                f"the limiter's lease ({self._lease:g} s) must exceed the client's per-attempt "
                f"timeout ({seconds:g} s), or a slot could free while its request is in flight"
            )
        self._attempt_timeout = max(self._attempt_timeout, float(seconds))
        self._fallback.expect_attempt_timeout(seconds)

    # -- keys
    def keys(self, scope: str, action: str) -> tuple[str, str, str, str]:
        """The (inflight, held, rate, since) keys of one lane; one hash tag, so one cluster
        slot."""
        tag = f"{scope}:{action}".replace("{", "(").replace("}", ")")
        base = f"{self.prefix}:{{{tag}}}"
        return f"{base}:inflight", f"{base}:held", f"{base}:rate", f"{base}:since"

    def _slot(
        self, scope: str, action: str, qps: float, timeout: float | None, wait: float | None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        if timeout is not None and timeout >= self._lease:
            raise ValueError(
                f"timeout ({timeout} s) must be shorter than the limiter's lease ({self._lease} s)"
            )
        return _RedisSlot(self, scope, action, qps, timeout, wait)

    # -- RateLimiter

    def report_throttled(self, scope: str, action: str) -> None:
        self._fallback.report_throttled(scope, action)
        if self._use_local():
            return
        try:
            state = self._state()
        except RuntimeError:  # no running loop: nothing to schedule on
            return
        qps = self._qps_seen.get((scope, action))
        if qps is None:
            return
        task = asyncio.get_running_loop().create_task(self._throttled(state, scope, action, qps))
        state.background.add(task)
        task.add_done_callback(state.background.discard)

    def report_success(self, scope: str, action: str) -> None:
        """A no-op kept for code written against the older Protocol (the client no longer
        reports successes: recovery is a function of time)."""

    async def rate(self, scope: str, action: str, qps: float) -> float:
        """The lane's current effective rate as Redis sees it (inspection, tests)."""
        state = self._state()
        a = self._adaptive
        raw = await state.scripts["rate"](
            keys=[self.keys(scope, action)[2]], args=[repr(qps), repr(a.scale), repr(a.min_rate)]
        )
        return float(raw)

    # -- machinery
    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            client = self._given_client or self._redis_module.Redis.from_url(
                self.url,
                socket_connect_timeout=self._connect_timeout,
                socket_timeout=self._socket_timeout,
            )
            scripts = {
                "acquire": client.register_script(_LUA_ACQUIRE),
                "release": client.register_script(_LUA_RELEASE),
                "throttled": client.register_script(_LUA_THROTTLED),
                "rate": client.register_script(_LUA_RATE),
            }
            state = self._states[loop] = _LoopState(client=client, scripts=scripts)
        return state

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and this process counts on its own (``"local"``)."""
        return self._use_local()

    def lanes(self) -> list[LaneState]:
        """What this process's fallback limiter counts (the shared state lives in Redis)."""
        return self._fallback.lanes()

    def _use_local(self) -> bool:
        return self.on_unavailable == "local" and time.monotonic() < self._down_until

    def _unavailable(self, exc: BaseException, action: str) -> None:
        where = redact_url(self.url)
        if self.on_unavailable == "fail":
            raise RedisUnavailableError(
                f"rate limiter Redis at {where} is unavailable: {type(exc).__name__}: {exc}",
                action=action,
            ) from exc
        if time.monotonic() >= self._down_until:
            get_logger().warning(
                "aioedge.redis_unavailable",
                url=where,
                error=f"{type(exc).__name__}: {exc}",
                fallback="local",
                retry_after_s=self._retry_after,
            )
        self._down_until = time.monotonic() + self._retry_after

    def _queue(self, state: _LoopState, scope: str, action: str) -> _LocalQueue:
        queue = state.queues.get((scope, action))
        if queue is None:
            queue = state.queues[(scope, action)] = _LocalQueue()
        return queue

    def _args(self, qps: float) -> tuple[str, str]:
        return repr(float(qps)), str(max(1, math.floor(qps)))

    async def _acquire(
        self, state: _LoopState, scope: str, action: str, qps: float
    ) -> _Grant | None:
        """A Redis slot; None when Redis became unavailable ("local") while this waiter
        queued behind the one that found out."""
        self._qps_seen[(scope, action)] = qps
        keys = self.keys(scope, action)
        queue = self._queue(state, scope, action)
        base = f"{self._pid}-{uuid.uuid4().hex}"
        q, slots = self._args(qps)
        a = self._adaptive
        args = [base, q, slots, repr(self._lease), repr(a.scale), repr(a.min_rate), "1"]
        args.append(repr(self._window))
        # The script names the one slot it grants "<base>:1".
        grant = _Grant(scope=scope, action=action, qps=qps, token=f"{base}:1")
        async with queue.lock:  # FIFO among this process's waiters; only the head asks Redis
            while True:
                if self._use_local():
                    # Redis went away while we queued (the head's acquire failed): the
                    # local slot this waiter holds is the slot, as for the head.
                    return None
                queue.changed.clear()
                call = asyncio.ensure_future(state.scripts["acquire"](keys=list(keys), args=args))
                try:
                    granted, raw = await asyncio.shield(call)
                except asyncio.CancelledError:
                    # The script may still grant us a slot: give it straight back if so.
                    call.add_done_callback(lambda f: self._abandon(state, grant, f))
                    raise
                except self._redis_errors:
                    # Redis may have run the script and granted the slot, its reply lost (a
                    # timeout, a connection cut after sending): hand it back, best effort.
                    self._hand_back(state, grant, again=True)
                    raise
                if self._unreturned:
                    self._return_unreturned(state)  # Redis answers again
                if int(granted) >= 1:
                    return grant
                if int(granted) < 0:
                    get_logger().info(
                        "aioedge.redis_lane_started",
                        action=action,
                        scope=scope,
                        prefix=self.prefix,
                        wait_s=float(raw),
                    )
                wait = float(raw)
                delay = self._poll if wait < 0 else max(wait, _MIN_DELAY)
                with anyio.move_on_after(delay):
                    await queue.changed.wait()

    def _abandon(self, state: _LoopState, grant: _Grant, done: asyncio.Future[Any]) -> None:
        """The acquire call of a cancelled waiter finished: hand back a slot it granted (or
        may have granted, when its reply was lost)."""
        if done.cancelled():
            return
        if done.exception() is None and int(done.result()[0]) < 1:
            return
        self._hand_back(state, grant)

    def _hand_back(self, state: _LoopState, grant: _Grant, *, again: bool = False) -> None:
        """Give back, in the background, a slot granted to nobody (mode ``0``: no hold).  A
        token Redis never granted is simply not found; if Redis cannot be reached, it is
        sent again once Redis answers (or the lease frees the slot).  ``again``: send it
        once more then anyway: an acquire whose reply timed out because Redis stalled runs
        when Redis wakes up, possibly after this hand-back."""
        task = asyncio.get_running_loop().create_task(
            self._release(state, grant, mode="0", quiet=True)
        )
        state.background.add(task)
        task.add_done_callback(state.background.discard)
        if again:
            self._remember(grant, "0", 0.0)

    def _remember(self, grant: _Grant, mode: _Mode, lost_hold: float) -> None:
        """Keep a release to send again once Redis answers: those whose lease has ended
        are dropped (Redis has let them go), and at most ``_MAX_UNRETURNED`` are kept (a
        long outage in "fail" mode adds one per attempt; the leases free the rest)."""
        now = time.monotonic()
        pending = [e for e in self._unreturned if now - e[0] < self._lease]
        pending.append((now, grant, mode, lost_hold))
        self._unreturned = pending[-_MAX_UNRETURNED:]

    def _return_unreturned(self, state: _LoopState) -> None:
        """Send again, in the background, what Redis could not take before (those whose
        lease has ended since are gone from Redis anyway)."""
        pending, self._unreturned = self._unreturned, []
        now = time.monotonic()
        for due, grant, mode, lost_hold in pending:
            if now - due >= self._lease:
                continue
            task = asyncio.get_running_loop().create_task(
                self._release(state, grant, mode=mode, lost_hold=lost_hold, quiet=True)
            )
            state.background.add(task)
            task.add_done_callback(state.background.discard)

    async def _release(
        self,
        state: _LoopState,
        grant: _Grant,
        *,
        mode: _Mode,
        lost_hold: float = 0.0,
        quiet: bool = False,
    ) -> None:
        q, slots = self._args(grant.qps)
        a = self._adaptive
        args = [grant.token, q, slots, repr(self._window), repr(a.scale), repr(a.min_rate)]
        args += [mode, repr(lost_hold), repr(self._lease)]
        keys = self.keys(grant.scope, grant.action)[:3]
        try:
            await state.scripts["release"](keys=list(keys), args=args)
        except self._redis_errors as exc:
            # Sent again once Redis answers (or the slot's lease frees it); the request itself
            # is done, so do not raise.  (quiet: a hand-back after a failed acquire, whose
            # failure was reported already.)
            self._remember(grant, mode, lost_hold)
            log = get_logger()
            (log.debug if quiet else log.warning)(
                "aioedge.redis_release_failed",
                action=grant.action,
                error=f"{type(exc).__name__}: {exc}",
                lease_s=self._lease,
            )
        queue = state.queues.get((grant.scope, grant.action))
        if queue is not None:
            queue.changed.set()

    async def _throttled(self, state: _LoopState, scope: str, action: str, qps: float) -> None:
        a = self._adaptive
        args = [repr(qps), repr(a.beta), repr(a.scale), repr(a.min_rate), repr(a.cooldown)]
        try:
            decreased = await state.scripts["throttled"](
                keys=[self.keys(scope, action)[2]], args=args
            )
        except self._redis_errors as exc:
            get_logger().warning(
                "aioedge.redis_unavailable", url=redact_url(self.url), error=str(exc)
            )
            return
        if int(decreased) == 1:
            get_logger().info("aioedge.rate_decreased", action=action, scope=scope, shared=True)
