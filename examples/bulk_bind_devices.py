"""Bulk device binding: bind many sub-devices to an instance with a driver, then configure them.

Shows ``client.batch`` doing the bookkeeping a fleet job needs:

* the API takes at most 20 IotIds (or 20 DeviceConfigs) a call; hand ``batch`` a list of
  any length and it splits it into 20-item calls, validated before the first is sent, run
  within the 5-QPS quota of each Action, and merged back into one result;
* a chunk that fails does not stop the others: the result is a ``PartialBatchError`` that
  says which devices were applied, which were not and which may have been (an answer lost
  on the way back), so the report below is per device;
* ``on_progress`` draws a progress line (the devices go in groups of ``--group-size``, one
  batch item each, so there is progress to show between groups).

Against the emulator (``--seed-demo`` creates an instance with a driver and invents the
device ids)::

    aioedge emulator --port 8123 --speed 10 &
    export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI5tEmulatorAccessKeyId
    export ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-access-key-secret
    python examples/bulk_bind_devices.py --endpoint http://127.0.0.1:8123 --seed-demo --devices 100

Against your account: the instance, a driver bound to it, and the devices' IotIds::

    python examples/bulk_bind_devices.py --instance INSTANCE --driver DRIVER \\
        --iot-ids-file iot_ids.txt --config '{"slave": {n}}'

Exit 0 when every device was bound and configured, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from _setup import add_connection_args, fake_iot_ids, make_client, run, seed_fleet

import aioedge


@dataclass
class Outcome:
    """What happened to one device in one step."""

    status: str  # "ok" | "failed" | "unknown" (the call may have been applied)
    error: aioedge.EdgeError | None = None


def groups(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def per_device(
    result: aioedge.BatchResult, iot_ids: Sequence[str]
) -> Iterator[tuple[str, Outcome]]:
    """The outcome of each device of one batch item (a group of devices)."""
    err = result.error
    if err is None:
        for iot_id in iot_ids:
            yield iot_id, Outcome("ok")
    elif isinstance(err, aioedge.PartialBatchError):
        # Chunks are all-or-nothing; the error says which devices each chunk carried.
        for chunk in err.chunks:
            for item in chunk.items:
                iot_id = item["IotId"] if isinstance(item, dict) else str(item)
                yield iot_id, Outcome(chunk.status, chunk.error)
    else:  # one call (≤ 20 devices), or the whole item rejected before any I/O
        maybe = isinstance(err, aioedge.TransportError) and err.maybe_executed
        for iot_id in iot_ids:
            yield iot_id, Outcome("unknown" if maybe else "failed", err)


def progress(
    label: str, sizes: Sequence[int], out: TextIO = sys.stderr
) -> Callable[[int, int | None, aioedge.BatchResult], None]:
    """An ``on_progress`` hook: one line redrawn in place on a terminal, else a line per group."""
    total = sum(sizes)
    state = {"devices": 0, "failed": 0}
    tty = out.isatty()

    def hook(done: int, _total: int | None, result: aioedge.BatchResult) -> None:
        state["devices"] += sizes[result.index]
        state["failed"] += 0 if result.ok else 1
        failed = f", {state['failed']} group(s) with failures" if state["failed"] else ""
        line = f"{label}: {state['devices']}/{total} devices{failed}"
        if tty:
            out.write(f"\r\x1b[2K{line}" + ("\n" if done == len(sizes) else ""))
        else:
            out.write(line + "\n")
        out.flush()

    return hook


async def bind(
    client: aioedge.EdgeClient, instance_id: str, driver_id: str, iot_ids: list[str], size: int
) -> dict[str, Outcome]:
    parts = groups(iot_ids, size)
    calls = [
        (
            "BatchBindDeviceToEdgeInstanceWithDriver",
            {"InstanceId": instance_id, "DriverId": driver_id, "IotIds": list(part)},
        )
        for part in parts
    ]
    results = await client.batch(calls, on_progress=progress("bind", [len(p) for p in parts]))
    return {
        iot_id: outcome
        for part, result in zip(parts, results, strict=True)
        for iot_id, outcome in per_device(result, part)
    }


async def configure(
    client: aioedge.EdgeClient, instance_id: str, iot_ids: list[str], template: str, size: int
) -> dict[str, Outcome]:
    configs = [
        {"IotId": iot_id, "Content": template.replace("{n}", str(n)).replace("{iot_id}", iot_id)}
        for n, iot_id in enumerate(iot_ids, start=1)
    ]
    parts = groups(configs, size)
    calls = [
        ("BatchSetEdgeInstanceDeviceConfig", {"InstanceId": instance_id, "DeviceConfigs": part})
        for part in parts
    ]
    results = await client.batch(calls, on_progress=progress("config", [len(p) for p in parts]))
    return {
        iot_id: outcome
        for part, result in zip(parts, results, strict=True)
        for iot_id, outcome in per_device(result, [c["IotId"] for c in part])
    }


def report(step: str, outcomes: dict[str, Outcome]) -> bool:
    """Print a step's summary and its failures grouped by error; True if all went well."""
    counts = {s: sum(1 for o in outcomes.values() if o.status == s) for s in ("ok", "failed")}
    unknown = len(outcomes) - counts["ok"] - counts["failed"]
    print(f"{step}: {counts['ok']} ok, {counts['failed']} failed, {unknown} unknown")
    by_error: dict[str, list[str]] = {}
    for iot_id, outcome in outcomes.items():
        if outcome.status != "ok":
            err = outcome.error
            code = getattr(err, "code", None) or type(err).__name__
            rid = getattr(err, "request_id", None)
            key = f"{outcome.status}: {code}" + (f" (RequestId {rid})" if rid else "")
            by_error.setdefault(key, []).append(iot_id)
    for key, ids in by_error.items():
        shown = ", ".join(ids[:5]) + (f", … {len(ids) - 5} more" if len(ids) > 5 else "")
        print(f"  {len(ids)} {key}: {shown}")
    return counts["ok"] == len(outcomes)


def read_iot_ids(args: argparse.Namespace) -> list[str]:
    ids = [i for value in args.iot_ids for i in value.split(",") if i]
    if args.iot_ids_file:
        with open(args.iot_ids_file) if args.iot_ids_file != "-" else sys.stdin as f:
            ids += [line.strip() for line in f if line.strip() and not line.startswith("#")]
    return list(dict.fromkeys(ids))  # each device once, in the order given


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_connection_args(parser, seed_help="create the instance and driver, invent --devices ids")
    parser.add_argument("--instance", help="the edge instance")
    parser.add_argument("--driver", help="a driver bound to the instance")
    parser.add_argument("--iot-ids", action="append", default=[], help="IotIds, comma-separated")
    parser.add_argument("--iot-ids-file", help="a file with one IotId a line ('-': stdin)")
    parser.add_argument("--devices", type=int, default=60, help="with --seed-demo: how many")
    parser.add_argument(
        "--config", default='{"slave": {n}}', help="config content; {n} and {iot_id} substituted"
    )
    parser.add_argument(
        "--group-size", type=int, default=100, help="devices per batch item (progress step)"
    )
    args = parser.parse_args(argv)
    if args.group_size < 1:
        parser.error("--group-size must be at least 1")

    async with make_client(args) as client:
        iot_ids = read_iot_ids(args)
        if args.seed_demo:
            fleet = await seed_fleet(client, "bulk_bind_demo", gateways=1)
            args.instance, args.driver = fleet.instance_id, fleet.driver_id
            iot_ids += fake_iot_ids(args.devices)
        if not (args.instance and args.driver and iot_ids):
            parser.error("give --instance, --driver and some devices (or --seed-demo)")
        print(f"binding {len(iot_ids)} device(s) to {args.instance} with driver {args.driver}")

        bound = await bind(client, args.instance, args.driver, iot_ids, args.group_size)
        all_bound = report("bind", bound)
        ok_ids = [i for i, o in bound.items() if o.status == "ok"]
        all_configured = True
        if ok_ids:
            configured = await configure(
                client, args.instance, ok_ids, args.config, args.group_size
            )
            all_configured = report("config", configured)
    return 0 if all_bound and all_configured else 1


if __name__ == "__main__":
    sys.exit(run(main()))
