"""The emulator's fleet: hundreds of instances with gateways, a seeded share failing."""

from __future__ import annotations

import json

import aiohttp
import pytest

from aioedge import EdgeClient
from aioedge.testing import Emulator, FakeClock
from aioedge.testing._command import build_parser
from aioedge.testing._fleet import FleetSpec, choose_failing


def test_the_failing_share_is_exact_and_seeded() -> None:
    ids = [f"i{n}" for n in range(200)]
    chosen = choose_failing(ids, 0.1, seed=7)
    assert len(chosen) == 20 and chosen <= set(ids)
    assert choose_failing(ids, 0.1, seed=7) == chosen
    assert choose_failing(ids, 0.1, seed=8) != chosen
    assert choose_failing(ids, 0.0, seed=7) == frozenset()


@pytest.mark.parametrize(
    ("keyword", "value", "spec_field"),
    [("fleet", -1, "size"), ("fleet_gateways", 3, "gateways"), ("fail_rate", 1.5, "fail_rate")],
)
def test_bad_fleet_options_are_refused(keyword: str, value: float, spec_field: str) -> None:
    with pytest.raises(ValueError, match=keyword):
        FleetSpec(**{spec_field: value})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=keyword):
        Emulator(**{keyword: value})


async def test_a_fleet_deploys_and_its_failing_share_fails() -> None:
    clock = FakeClock()
    async with Emulator(fleet=40, fleet_gateways=2, fail_rate=0.25, seed=3, clock=clock) as emu:
        assert len(emu.fleet) == 40 and len(set(emu.fleet)) == 40
        failing = emu.failing_instances
        assert len(failing) == 10 and failing <= set(emu.fleet)
        async with EdgeClient(
            credentials=emu.credentials, endpoint=emu.endpoint, rate_limit=False
        ) as client:
            first = await client.call("GetEdgeInstance", {"InstanceId": emu.fleet[0]})
            assert first["Data"]["Name"] == "fleet-0000"
            gateways = await client.call("QueryEdgeInstanceGateway", {"InstanceId": emu.fleet[0]})
            assert len(gateways["GatewayList"]) == 2
            ok_id = next(i for i in emu.fleet if i not in failing)
            bad_id = next(iter(sorted(failing)))
            deps = {}
            for iid in (ok_id, bad_id):
                body = await client.call(
                    "CreateEdgeInstanceDeployment", {"InstanceId": iid, "Type": "deploy"}
                )
                deps[iid] = body["DeploymentId"]
            clock.advance(60)
            status = {}
            for iid, dep in deps.items():
                body = await client.call(
                    "GetEdgeInstanceDeployment", {"InstanceId": iid, "DeploymentId": dep}
                )
                status[iid] = body["Data"]["Status"]
                assert len(body["Data"]["TaskList"]) == 2
                assert body["Data"]["TaskList"][0]["ResourceSnapshotList"]
            assert status == {ok_id: 2, bad_id: 3}
            # Chosen by hand: the healthy one fails from now on, and back again.
            emu.fail_instances([ok_id], message="bad flash")
            body = await client.call(
                "CreateEdgeInstanceDeployment", {"InstanceId": ok_id, "Type": "deploy"}
            )
            clock.advance(60)
            got = await client.call(
                "GetEdgeInstanceDeployment",
                {"InstanceId": ok_id, "DeploymentId": body["DeploymentId"]},
            )
            assert got["Data"]["Status"] == 3
            emu.fail_instances([ok_id], fail=False)
            assert ok_id not in emu.failing_instances
            with pytest.raises(KeyError):
                emu.fail_instances(["nope"])
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{emu.endpoint}/_emulator/fleet") as resp,
        ):
            listing = await resp.json()
        assert listing["instances"] == list(emu.fleet)
        assert set(listing["failing"]) == emu.failing_instances
        # A reset brings the same fleet back (ids come from the seed).
        before = emu.fleet
        emu.reset()
        assert emu.fleet == before and len(emu.failing_instances) == 10


def test_the_command_takes_fleet_options() -> None:
    args = build_parser().parse_args(["--fleet", "200", "--fail-rate", "10%", "--seed", "4"])
    assert (args.fleet, args.fail_rate, args.seed) == (200, 0.1, 4)
    assert build_parser().parse_args(["--fail-rate", "0.05"]).fail_rate == 0.05
    for bad in (["--fail-rate", "120%"], ["--fleet", "-3"], ["--fail-rate", "x"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(bad)
    assert json.dumps(vars(args))  # plain values


def test_the_fleet_options_are_explicit_typed_keywords() -> None:
    import inspect

    params = inspect.signature(Emulator).parameters
    assert params["fleet"].kind is inspect.Parameter.KEYWORD_ONLY
    assert (params["fleet"].default, params["fleet_gateways"].default) == (0, 1)
    assert params["fail_rate"].default == 0.0
    assert params["fail_rate"].annotation in (float, "float")
    emu = Emulator(fleet=3, fail_rate=0.5)
    assert (emu.options.fleet, emu.options.fail_rate) == (3, 0.5)
