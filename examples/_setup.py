"""Plumbing shared by the examples: connection options, one-line errors, demo seeding.

Every example takes the options the ``aioedge`` command takes::

    --endpoint URL    the API (default $ALIBABA_CLOUD_IOT_ENDPOINT, the variable the
                      emulator tells you to export, else https://iot.{region}.aliyuncs.com)
    --region ID       default $ALIBABA_CLOUD_REGION_ID, else cn-shanghai
    --profile NAME    a credentials profile

and reads its credentials from the library's chain (``ALIBABA_CLOUD_ACCESS_KEY_ID`` /
``ALIBABA_CLOUD_ACCESS_KEY_SECRET``, then the aliyun CLI profile, then credentials.ini).

``--seed-demo`` first creates the resources an example needs — instances, a driver and
a version, gateways, sub-devices — so that it has something to show on an empty emulator::

    aioedge emulator --port 8123 --speed 10 &
    export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI5tEmulatorAccessKeyId
    export ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-access-key-secret
    python examples/inventory.py --endpoint http://127.0.0.1:8123 --seed-demo

Seeding invents device ids (the emulator registers unknown devices on first use), so it
refuses any endpoint but a local one: it never creates resources in a real account.  It is
idempotent: run again on the same emulator, it finds the instance it made (by name) and
reuses it instead of failing with ``InstanceNameExist``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aioedge

__all__ = [
    "Fleet",
    "add_connection_args",
    "fake_iot_ids",
    "make_client",
    "print_error",
    "run",
    "seed_fleet",
]

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: What ``aioedge emulator`` tells users to export; the ``aioedge`` command reads it too.
ENDPOINT_ENV = "ALIBABA_CLOUD_IOT_ENDPOINT"


def add_connection_args(parser: argparse.ArgumentParser, *, seed_help: str | None = None) -> None:
    """``--endpoint``, ``--region``, ``--profile`` (and ``--seed-demo`` when ``seed_help``)."""
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--endpoint",
        default=os.environ.get(ENDPOINT_ENV) or None,
        help=f"API URL (default ${ENDPOINT_ENV}, else https://iot.{{region}}.aliyuncs.com)",
    )
    group.add_argument("--region", help="region id (default $ALIBABA_CLOUD_REGION_ID)")
    group.add_argument("--profile", help="credentials profile (aliyun CLI or credentials.ini)")
    if seed_help is not None:
        group.add_argument(
            "--seed-demo", action="store_true", help=f"{seed_help} (local emulator only)"
        )


def make_client(args: argparse.Namespace, **options: Any) -> aioedge.EdgeClient:
    """An EdgeClient for ``--endpoint/--region/--profile``; credentials from the chain."""
    return aioedge.EdgeClient(
        region_id=args.region, endpoint=args.endpoint, profile=args.profile, **options
    )


def print_error(err: BaseException) -> None:
    """One line on stderr: the code and RequestId of a service error, never a traceback."""
    if isinstance(err, aioedge.ApiError):
        rid = f" (RequestId {err.request_id})" if err.request_id else ""
        print(f"error: {err.code}: {err.message}{rid}", file=sys.stderr)
    else:
        print(f"error: {err}", file=sys.stderr)


def run(main: Coroutine[Any, Any, int]) -> int:
    """``asyncio.run(main)`` with the exit codes of the ``aioedge`` command: an error is one
    line and exit 1; bad input or missing credentials exit 2; Ctrl-C exits 130."""
    try:
        return asyncio.run(main)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (aioedge.ValidationError, aioedge.CredentialsError) as err:
        print_error(err)
        return 2
    except aioedge.EdgeError as err:
        print_error(err)
        return 1


# --------------------------------------------------------------------------- seeding


@dataclass(frozen=True, kw_only=True)
class Fleet:
    """What :func:`seed_fleet` created."""

    instance_id: str
    driver_id: str
    driver_version: str
    gateway_ids: tuple[str, ...]
    device_ids: tuple[str, ...]
    created: bool = True  # False: an earlier run made it, and it was found again


def fake_iot_ids(count: int, prefix: str = "dev") -> list[str]:
    """Made-up IotIds; the emulator registers unknown devices the first time it sees them."""
    return [f"{prefix}{uuid.uuid4().hex[:17]}" for _ in range(count)]


def _require_local(client: aioedge.EdgeClient) -> None:
    host = urlsplit(client.endpoint).hostname or ""
    if host not in _LOCAL_HOSTS:
        raise aioedge.ValidationError(
            f"--seed-demo invents device ids and only runs against a local emulator, "
            f"not {client.endpoint}",
            param="--seed-demo",
            rule="local",
        )


async def seed_fleet(
    client: aioedge.EdgeClient,
    name: str,
    *,
    gateways: int = 1,
    devices: int = 0,
    bind_devices: bool = True,
) -> Fleet:
    """Create an instance with a driver (version 1.0.0) bound, ``gateways`` gateways and
    ``devices`` sub-devices (bound with the driver and a config unless ``bind_devices`` is
    false: then their IotIds are only invented)."""
    _require_local(client)
    found = await _seeded(client, name)
    if found is not None:
        return found
    inst = await client.create_edge_instance(name=name, spec=20, tags="seeded:demo")
    drv = await client.create_edge_driver(
        driver_name=f"{name}_drv"[:20], driver_protocol="modbus", runtime="python3"
    )
    await client.create_edge_driver_version(
        driver_id=drv.driver_id,
        driver_version="1.0.0",
        edge_version="2.4.0",
        source_config=json.dumps({"ossAddress": "http://127.0.0.1/driver.zip"}),
    )
    gateway_ids = fake_iot_ids(gateways, prefix="gw")
    for iot_id in gateway_ids:
        await client.bind_gateway_to_edge_instance(instance_id=inst.instance_id, iot_id=iot_id)
    await client.bind_driver_to_edge_instance(
        instance_id=inst.instance_id, driver_id=drv.driver_id, driver_version="1.0.0"
    )
    device_ids = fake_iot_ids(devices)
    if device_ids and bind_devices:
        # One call each: client.batch splits the lists into the API's 20-item calls.
        bind = {"InstanceId": inst.instance_id, "DriverId": drv.driver_id, "IotIds": device_ids}
        (await client.batch([("BatchBindDeviceToEdgeInstanceWithDriver", bind)]))[0].unwrap()
        configs = [
            {"IotId": iot_id, "Content": json.dumps({"slave": n})}
            for n, iot_id in enumerate(device_ids, start=1)
        ]
        config = {"InstanceId": inst.instance_id, "DeviceConfigs": configs}
        (await client.batch([("BatchSetEdgeInstanceDeviceConfig", config)]))[0].unwrap()
    return Fleet(
        instance_id=inst.instance_id,
        driver_id=drv.driver_id,
        driver_version="1.0.0",
        gateway_ids=tuple(gateway_ids),
        device_ids=tuple(device_ids),
    )


async def _seeded(client: aioedge.EdgeClient, name: str) -> Fleet | None:
    """The fleet an earlier ``seed_fleet(name)`` made, read back from the service, or None."""
    page = await client.query_edge_instance(name=name, page_size=30)
    inst = next((i for i in page if i.name == name and i.instance_id), None)
    if inst is None or inst.instance_id is None:
        return None
    instance_id = inst.instance_id
    drivers = await client.query_edge_instance_driver(instance_id=instance_id, page_size=30)
    gateways = await client.query_edge_instance_gateway(instance_id=instance_id)
    devices = [
        item.get("IotId") or item.get("IoId") or item.get("deviceId")
        async for item in client.paginate("QueryEdgeInstanceDevice", {"InstanceId": instance_id})
    ]
    driver = next(iter(drivers), None)
    return Fleet(
        instance_id=instance_id,
        driver_id=(driver.driver_id if driver else None) or "",
        driver_version=(driver.driver_version if driver else None) or "1.0.0",
        gateway_ids=tuple(g.iot_id for g in gateways if g.iot_id),
        device_ids=tuple(str(d) for d in devices if d),
        created=False,
    )
