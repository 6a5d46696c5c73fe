"""Seeded, per-Action fault injection: what to break, how often, decided without I/O.

Kinds, and when they strike:

==============  ================================================================
``unavailable``  HTTP 503 ``ServiceUnavailable`` before execution
``reset``        the TCP connection is reset before execution
``delay``        the request is handled at once (executed, if it passes the checks);
                 its answer is held back ``delay`` seconds, then served
``malformed``    executed, then a truncated JSON body is sent (HTTP 200)
``lost``         executed, then the connection is reset: the response is lost
==============  ================================================================

``unavailable``, ``reset`` and ``delay`` are decided when a request arrives;
``malformed`` and ``lost`` only once a request has been executed, so a throttled or
rejected request never counts against them.  A ``delay`` record's ``executed`` says
whether the request it held back had run: a client that times out on it may well have
had its call executed.  A rule fires with probability ``rate``
(drawn from a ``random.Random(seed)``), skips its first ``after`` matching requests, and
fires at most ``times`` times.  ``action="*"`` matches every Action.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

from .._catalog import get_operation
from .._errors import ValidationError

__all__ = [
    "FAULT_KINDS",
    "KIND_ALIASES",
    "FaultPlan",
    "FaultRecord",
    "FaultSpec",
    "FaultsInput",
    "check_fault_actions",
    "normalize_faults",
    "parse_faults",
]

FaultKind = Literal["unavailable", "reset", "delay", "malformed", "lost"]
FAULT_KINDS: tuple[str, ...] = ("unavailable", "reset", "delay", "malformed", "lost")
PRE_EXECUTION = frozenset({"unavailable", "reset", "delay"})
POST_EXECUTION = frozenset({"malformed", "lost"})


# Other names of the kinds (the CLI's help uses "503"), accepted wherever a kind is given:
# spec strings, FaultSpec(kind=...) and the HTTP inspection API's rules.
KIND_ALIASES = {"503": "unavailable", "slow": "delay", "truncated": "malformed"}


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSpec:
    """One fault rule.

    ``kind`` may be given by an alias (``503``, ``slow``, ``truncated``); it is stored as
    the kind the alias names, so every way in (spec strings, ``FaultSpec``, the HTTP
    inspection API) accepts the same names.
    """

    kind: str
    action: str = "*"
    rate: float = 1.0
    times: int | None = None
    after: int = 0
    delay: float = 1.0  # seconds, for kind="delay"

    def __post_init__(self) -> None:
        kind = str(self.kind)  # a JSON rule may say 503
        object.__setattr__(self, "kind", KIND_ALIASES.get(kind, kind))
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)} "
                f"(aliases {', '.join(KIND_ALIASES)})"
            )
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within [0, 1], got {self.rate}")
        if self.times is not None and self.times < 0:
            raise ValueError(f"fault times must be >= 0, got {self.times}")
        if self.after < 0:
            raise ValueError(f"fault after must be >= 0, got {self.after}")
        if self.delay < 0:
            raise ValueError(f"fault delay must be >= 0, got {self.delay}")

    @property
    def phase(self) -> str:
        return "pre" if self.kind in PRE_EXECUTION else "post"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultRecord:
    """One fault that struck: which request, which kind, and whether it had run
    (``delay``: whether the request whose answer was held back was executed)."""

    action: str
    kind: str
    nonce: str | None
    executed: bool
    time: float
    request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


FaultsInput = (
    None
    | str
    | FaultSpec
    | Sequence[FaultSpec]
    | Sequence[str]
    | Mapping[str, str | FaultSpec | Sequence[FaultSpec]]
)


def _parse_item(action: str, text: str) -> FaultSpec:
    head, *options = [part.strip() for part in text.split(":")]
    kind, _, rate = head.partition("=")
    kwargs: dict[str, Any] = {"kind": kind, "action": action}
    if rate:
        options.insert(0, f"rate={rate}")
    for option in options:
        key, sep, value = option.partition("=")
        if not sep:
            raise ValueError(
                f"fault option {option!r} must be key=value (rate, times, after, delay)"
            )
        try:
            if key == "rate":
                kwargs["rate"] = float(value)
            elif key == "times":
                kwargs["times"] = int(value)
            elif key == "after":
                kwargs["after"] = int(value)
            elif key == "delay":
                kwargs["delay"] = float(value.removesuffix("s"))
            else:
                raise ValueError(f"unknown fault option {key!r} (rate, times, after, delay)")
        except ValueError as exc:
            raise ValueError(f"bad fault option {option!r}: {exc}") from None
    return FaultSpec(**kwargs)


def parse_faults(text: str) -> tuple[FaultSpec, ...]:
    """Parse ``ACTION:KIND[=RATE][:rate=R][:times=N][:after=N][:delay=S]`` items joined by ``,``.

    ``"CreateEdgeInstance:lost:times=1,*:unavailable:rate=0.05,GetEdgeInstance:503=0.2"``;
    KIND also accepts the aliases ``503`` (unavailable), ``slow`` (delay) and
    ``truncated`` (malformed).
    """
    specs: list[FaultSpec] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        action, sep, rest = item.partition(":")
        if not sep or not action:
            raise ValueError(f"fault {item!r} must look like ACTION:KIND[:key=value...]")
        specs.append(_parse_item(action.strip(), rest))
    return tuple(specs)


def normalize_faults(faults: FaultsInput) -> tuple[FaultSpec, ...]:
    """Accept every documented spelling of the ``faults=`` option."""
    if faults is None:
        return ()
    if isinstance(faults, str):
        return parse_faults(faults)
    if isinstance(faults, FaultSpec):
        return (faults,)
    if isinstance(faults, Sequence) and all(isinstance(f, str) for f in faults):
        return tuple(spec for text in faults for spec in parse_faults(cast(str, text)))
    if isinstance(faults, Mapping):
        out: list[FaultSpec] = []
        for action, value in faults.items():
            if isinstance(value, str):
                out.append(_parse_item(action, value))
            elif isinstance(value, FaultSpec):
                out.append(_with_action(value, action))
            else:
                out.extend(_with_action(v, action) for v in value)
        return tuple(out)
    return tuple(cast(Iterable[FaultSpec], faults))


def check_fault_actions(specs: Iterable[FaultSpec]) -> tuple[FaultSpec, ...]:
    """``specs``, once every rule names an Action the emulator serves (or ``*``).

    A rule for any other name could never strike, so a typo would make a fault test pass
    without its fault: refused (``ValueError``) with the catalog's "did you mean" hint.
    """
    out = tuple(specs)
    for spec in out:
        if spec.action != "*":
            try:
                get_operation(spec.action)
            except ValidationError as err:
                raise ValueError(str(err)) from None
    return out


def _with_action(spec: FaultSpec, action: str) -> FaultSpec:
    return FaultSpec(
        kind=spec.kind,
        action=action,
        rate=spec.rate,
        times=spec.times,
        after=spec.after,
        delay=spec.delay,
    )


@dataclass(slots=True)
class _Rule:
    spec: FaultSpec
    seen: int = 0
    fired: int = 0


@dataclass(slots=True)
class FaultPlan:
    """The active rules and their counters; one seeded RNG makes runs repeatable."""

    specs: tuple[FaultSpec, ...] = ()
    seed: int = 0
    _rules: list[_Rule] = field(default_factory=list, init=False, repr=False)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.configure(self.specs)

    def configure(self, specs: Iterable[FaultSpec]) -> None:
        """Replace the rules and restart the counters and the RNG."""
        self.specs = tuple(specs)
        self._rules = [_Rule(spec) for spec in self.specs]
        self._rng = random.Random(self.seed)

    @property
    def active(self) -> bool:
        return bool(self._rules)

    def pick(self, action: str, phase: str) -> FaultSpec | None:
        """The fault to inject into this request at this phase ("pre" or "post"), if any."""
        for rule in self._rules:
            spec = rule.spec
            if spec.phase != phase or spec.action not in ("*", action):
                continue
            if spec.times is not None and rule.fired >= spec.times:
                continue
            rule.seen += 1
            if rule.seen <= spec.after:
                continue
            if spec.rate < 1.0 and self._rng.random() >= spec.rate:
                continue
            rule.fired += 1
            return spec
        return None

    def describe(self) -> list[dict[str, Any]]:
        return [{**r.spec.to_dict(), "seen": r.seen, "fired": r.fired} for r in self._rules]
