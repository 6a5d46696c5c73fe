"""``aioedge demo``: a complete rollout against the embedded emulator.

Starts the emulator in-process, builds a small edge fleet with the typed methods —
an instance, a driver and a version, gateways, the driver bound with its config, a
handful of sub-devices with their configs — deploys it and shows the rollout live.
No credentials and no network: everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from ._display import say

if TYPE_CHECKING:
    from ._live import PollInfo

__all__ = ["run_demo"]


#: How the command line shows an event stream (``_cli.stream_events``): passed in by the
#: caller, so this module does not import the command line that imports it.
class Show(Protocol):
    def __call__(
        self,
        args: argparse.Namespace,
        events: AsyncIterator[Any],
        out: TextIO,
        *,
        polls: Callable[[], PollInfo] | None = None,
    ) -> Awaitable[int]: ...


async def run_demo(args: argparse.Namespace, show: Show, out: TextIO | None = None) -> int:
    from ._client import EdgeClient
    from ._live import Polls
    from .testing import Emulator
    from .watch import deploy_and_watch

    out = out or sys.stdout
    quiet = args.output == "json"
    started = time.monotonic()

    def step(text: str) -> None:
        if not quiet:
            say(out, f"  {text}")

    async with Emulator(speed=args.speed, seed=0) as emu:
        if not quiet:
            say(out, f"aioedge demo: emulator on {emu.endpoint} (signatures and quotas enforced)")
        async with EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client:
            inst = await client.create_edge_instance(name="demo_line_7", spec=20, tags="site:demo")
            instance_id = inst.instance_id
            step(f"created instance demo_line_7 ({instance_id})")

            drv = await client.create_edge_driver(
                driver_name="demo_modbus",
                driver_protocol="modbus",
                runtime="python3",
                cpu_arch="x86-64",
            )
            driver_id = drv.driver_id
            await client.create_edge_driver_version(
                driver_id=driver_id,
                driver_version="1.0.0",
                edge_version="2.4.0",
                description="demo driver",
                source_config=json.dumps({"ossAddress": "http://127.0.0.1/driver_code.zip"}),
            )
            step(f"created driver demo_modbus ({driver_id}) version 1.0.0")

            for n in range(1, args.gateways + 1):
                gw = emu.add_device("demo_gw_pk", f"gateway_{n}", node_type="gateway")
                await client.bind_gateway_to_edge_instance(
                    instance_id=instance_id, iot_id=gw["IotId"]
                )
            step(f"bound {args.gateways} gateway(s)")

            await client.bind_driver_to_edge_instance(
                instance_id=instance_id, driver_id=driver_id, driver_version="1.0.0"
            )
            await client.set_edge_instance_driver_configs(
                instance_id=instance_id,
                driver_id=driver_id,
                configs=[{"format": "JSON", "content": json.dumps({"baud": 9600})}],
            )
            step("bound the driver with its config")

            devices = [
                emu.add_device("demo_sensor_pk", f"sensor_{n:02d}", node_type="sub")["IotId"]
                for n in range(1, args.devices + 1)
            ]
            # batch() chunks lists over the 20-device limit and keeps within the 5-QPS quota
            bind = await client.batch(
                [
                    (
                        "BatchBindDeviceToEdgeInstanceWithDriver",
                        {"InstanceId": instance_id, "DriverId": driver_id, "IotIds": devices},
                    ),
                ]
            )
            bind[0].unwrap()
            configs = [
                {"IotId": iot_id, "Content": json.dumps({"slave": n})}
                for n, iot_id in enumerate(devices, start=1)
            ]
            cfg = await client.batch(
                [
                    (
                        "BatchSetEdgeInstanceDeviceConfig",
                        {"InstanceId": instance_id, "DeviceConfigs": configs},
                    )
                ]
            )
            cfg[0].unwrap()
            step(f"bound {len(devices)} sub-device(s) with their configs")

            if not quiet:
                say(out, "deploying — every subtask and resource snapshot, live:")
            polls = Polls(client)  # the live view's "last poll N s ago"
            code = await show(
                args,
                deploy_and_watch(polls, instance_id, poll_interval=0.2, max_poll_interval=1.0),
                out,
                polls=polls.info,
            )
            stats: dict[str, Any] = emu.stats()
        throttled = sum(v.get("throttled", 0) for v in stats.values())
        calls = sum(v.get("requests", 0) for v in stats.values())
        if not quiet:
            verdict = "succeeded" if code == 0 else "did not succeed"
            say(
                out,
                f"rollout {verdict}: {calls} API calls, {throttled} throttled, "
                f"{time.monotonic() - started:.1f} s",
            )
    return code
