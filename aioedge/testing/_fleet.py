"""A fleet of edge instances to rehearse rollouts on: its shape and who fails (pure).

``Emulator(fleet=200, fail_rate=0.1)`` starts with 200 instances named ``fleet-0000`` …
``fleet-0199``, each with ``fleet_gateways`` bound gateways and the official Modbus driver
bound (so every deployment has one subtask per gateway and one snapshot in each).  Exactly
``round(fail_rate * fleet)`` of them, drawn with the emulator's ``seed``, fail every
deployment at stage 16 (packaging): a rollout over the fleet sees the same failures on
every run with that seed.  ``Emulator.fail_instances(ids)`` chooses failing instances by
hand, fleet or not.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ._deploy import Failure

__all__ = ["FLEET_FAILURE", "FLEET_FAILURE_STAGE", "FleetSpec", "choose_failing", "fleet_failure"]

#: The stage at which a failing instance's deployments fail.
FLEET_FAILURE_STAGE = 16
FLEET_FAILURE = "fleet instance set to fail"


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetSpec:
    """How many instances, gateways each, and the share whose deployments fail."""

    size: int = 0
    gateways: int = 1
    fail_rate: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ValueError(f"fleet must be an int >= 0, got {self.size!r}")
        if not 1 <= self.gateways <= 2:
            # Spec 20 (Standard) holds two gateways at most (2.6 InstanceGatewayLimitation).
            raise ValueError(f"fleet_gateways must be 1 or 2, got {self.gateways!r}")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError(f"fail_rate must be within 0..1, got {self.fail_rate!r}")

    def name(self, index: int) -> str:
        return f"fleet-{index:04d}"


def choose_failing(instance_ids: Sequence[str], fail_rate: float, seed: int) -> frozenset[str]:
    """``round(fail_rate * len(instance_ids))`` of the ids, the same for the same seed."""
    count = round(fail_rate * len(instance_ids))
    rng = random.Random(f"aioedge-fleet-failures:{seed}")
    return frozenset(rng.sample(list(instance_ids), count))


def fleet_failure(message: str = FLEET_FAILURE) -> Failure:
    """The failure armed for every deployment of a failing instance."""
    return Failure(stage=FLEET_FAILURE_STAGE, message=message)
