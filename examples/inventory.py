"""Inventory: every edge instance of the account with its latest deployment.

Shows ``client.paginate`` (every page of ``QueryEdgeInstance``, 30 a page) feeding
``client.batch`` (one ``QueryEdgeInstanceHistoricDeployment`` per instance, run as fast as
the 10-QPS quota allows and never throttled), typed models built from the bodies, and a
batch failure reported in its row instead of ending the run.

Against the emulator (``--seed-demo`` first creates three instances, two of them deployed)::

    aioedge emulator --port 8123 --speed 10 &
    export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI5tEmulatorAccessKeyId
    export ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-access-key-secret
    python examples/inventory.py --endpoint http://127.0.0.1:8123 --seed-demo
    python examples/inventory.py --endpoint http://127.0.0.1:8123 --json

Against your account: set the two variables (or ``--profile``) and leave out
``--endpoint`` (``--region`` picks the region).  It only reads.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from _setup import add_connection_args, make_client, run, seed_fleet

import aioedge
from aioedge.watch import status_name

SPECS = {10: "Lite", 20: "Standard", 30: "Pro"}


async def seed(client: aioedge.EdgeClient) -> None:
    for n, deploy in ((1, True), (2, True), (3, False)):
        fleet = await seed_fleet(client, f"inventory_{n}", gateways=1, devices=2)
        if deploy and fleet.created:  # seeded before: its deployment is there already
            await client.create_edge_instance_deployment(
                instance_id=fleet.instance_id, type="deploy"
            )


async def collect(client: aioedge.EdgeClient, name: str | None) -> list[dict[str, Any]]:
    """One row per instance: the instance's fields and its latest deployment's."""
    params = {"Name": name} if name else {}
    instances = [
        aioedge.EdgeInstance.from_dict(item)
        async for item in client.paginate("QueryEdgeInstance", params)
    ]
    # The service lists deployments newest first (see its sample answer in 2.12.4), so
    # page 1 of size 1 is the latest.
    calls = [
        (
            "QueryEdgeInstanceHistoricDeployment",
            {"InstanceId": inst.instance_id, "CurrentPage": 1, "PageSize": 1},
        )
        for inst in instances
    ]
    results = await client.batch(calls)
    rows = []
    for inst, result in zip(instances, results, strict=True):
        row: dict[str, Any] = {
            "instance_id": inst.instance_id,
            "name": inst.name,
            "spec": SPECS.get(inst.spec or 0, str(inst.spec)),
            "created": _iso(inst.gmt_create_timestamp or inst.gmt_create),
            "deployment_id": None,
            "deployment_type": None,
            "deployment_status": None,
            "deployed": None,
            "error": None,
        }
        if result.error is not None:
            row["error"] = getattr(result.error, "code", type(result.error).__name__)
        else:
            page = aioedge.parse_result("QueryEdgeInstanceHistoricDeployment", result.unwrap())
            assert isinstance(page, aioedge.Page)
            if page.items:
                latest: aioedge.HistoricDeployment = page.items[0]
                row["deployment_id"] = latest.deployment_id
                row["deployment_type"] = latest.type
                row["deployment_status"] = status_name(latest.status)
                row["deployed"] = _iso(latest.gmt_create_timestamp or latest.gmt_create)
        rows.append(row)
    return rows


def _iso(moment: datetime | None) -> str | None:
    """UTC, ISO 8601 (the service's Gmt* strings are UTC+8; the models make them aware)."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


COLUMNS = (
    ("instance_id", "INSTANCE"),
    ("name", "NAME"),
    ("spec", "SPEC"),
    ("deployment_id", "LATEST DEPLOYMENT"),
    ("deployment_type", "TYPE"),
    ("deployment_status", "STATUS"),
    ("deployed", "DEPLOYED (UTC)"),
)


def table(rows: Sequence[dict[str, Any]]) -> str:
    def cell(row: dict[str, Any], key: str) -> str:
        if key == "deployment_status" and row["error"]:
            return f"error: {row['error']}"
        if key == "deployment_id" and not row["error"] and row["deployment_id"] is None:
            return "(never deployed)"
        value = row[key]
        return "-" if value is None else str(value).replace("+00:00", "")

    cells = [[title for _, title in COLUMNS]] + [[cell(r, k) for k, _ in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_connection_args(parser, seed_help="create three instances first")
    parser.add_argument("--name", help="only instances with this name")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead")
    args = parser.parse_args(argv)
    async with make_client(args) as client:
        if args.seed_demo:
            await seed(client)
        rows = await collect(client, args.name)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(table(rows))
        failed = sum(1 for r in rows if r["error"])
        print(f"\n{len(rows)} instance(s)" + (f", {failed} could not be read" if failed else ""))
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(run(main()))
