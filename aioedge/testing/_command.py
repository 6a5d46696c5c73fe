"""``python -m aioedge.testing``: serve the emulator until interrupted.

Prints the endpoint and the emulator's credentials (fake ones, made for this purpose),
then serves until Ctrl-C or SIGTERM.  ``--json`` prints them as one JSON line instead, for
a parent process to read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence

from .._argtypes import count, positive, share
from .._settings import IOT_ENDPOINT_ENV
from ._emulator import Emulator
from ._faults import check_fault_actions, normalize_faults
from ._service import THROTTLE_STYLES, EmulatorOptions

__all__ = ["add_arguments", "build_parser", "main", "serve"]


def _port(text: str) -> int:
    """An argparse ``type`` for a TCP port: 0..65535 (a usage error, not a bind() traceback)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535, got {port}")
    return port


# The defaults are the emulator's own (EmulatorOptions'), except the port: a served
# emulator listens on a known one.
_DEFAULT = EmulatorOptions()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The emulator's options, for this command or a parent CLI's subcommand."""
    parser.add_argument("--host", default=_DEFAULT.host, help="address to listen on")
    parser.add_argument("--port", type=_port, default=8123, help="port (0: any free port)")
    parser.add_argument(
        "--speed",
        type=positive(float),
        default=_DEFAULT.speed,
        help="deployment simulation speed factor",
    )
    parser.add_argument(
        "--no-quota",
        "--no-quotas",
        dest="no_quotas",
        action="store_true",
        help="do not enforce the per-Action QPS quotas",
    )
    parser.add_argument(
        "--quota-scale",
        type=positive(float),
        default=_DEFAULT.quota_scale,
        help="multiply every quota",
    )
    parser.add_argument(
        "--throttle-style",
        choices=THROTTLE_STYLES,
        default=_DEFAULT.throttle_style,
        help="how throttled calls are answered",
    )
    parser.add_argument(
        "--faults",
        action="append",
        default=[],
        metavar="SPEC",
        help="fault injection, ACTION:KIND[=RATE][:times=N][:after=N][:delay=S], "
        "e.g. 'CreateEdgeInstance:lost:times=1' or '*:503=0.05' (repeatable, comma-joinable)",
    )
    parser.add_argument(
        "--seed", type=int, default=_DEFAULT.seed, help="seed for ids and fault draws"
    )
    parser.add_argument(
        "--fleet",
        type=count,
        default=_DEFAULT.fleet,
        metavar="N",
        help="start with N edge instances (fleet-0000 ...), each with a gateway and a driver",
    )
    parser.add_argument(
        "--fleet-gateways",
        type=int,
        choices=(1, 2),
        default=_DEFAULT.fleet_gateways,
        help="gateways per instance",
    )
    parser.add_argument(
        "--fail-rate",
        type=share,
        default=_DEFAULT.fail_rate,
        metavar="R",
        help="share of the fleet (0..1, or 10%%) whose deployments fail, drawn with --seed",
    )
    parser.add_argument(
        "--strict-devices",
        action="store_true",
        help="unknown devices are iot.device.NotExistedDevice instead of being created",
    )
    parser.add_argument(
        "--token-lifetime",
        type=positive(float),
        default=_DEFAULT.token_lifetime,
        metavar="SECONDS",
        help="how long the keys of its STS, ECS metadata and credentials URI live",
    )
    parser.add_argument(
        "--json", action="store_true", help="print endpoint and credentials as one JSON line"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aioedge.testing",
        description="Serve the emulated Link IoT Edge API on 127.0.0.1 until interrupted.",
    )
    add_arguments(parser)
    return parser


def _check_fault_actions(faults: Sequence[str]) -> None:
    """Refuse a rule for an Action the emulator does not serve before starting it."""
    try:
        check_fault_actions(normalize_faults(list(faults)))
    except ValueError as err:
        raise ValueError(f"--faults: {err}") from None


async def serve(args: argparse.Namespace) -> int:
    """Run the emulator described by ``args`` until SIGINT/SIGTERM."""
    _check_fault_actions(args.faults)
    emulator = Emulator(
        host=args.host,
        port=args.port,
        speed=args.speed,
        quotas=not args.no_quotas,
        quota_scale=args.quota_scale,
        throttle_style=args.throttle_style,
        faults=args.faults or None,
        seed=args.seed,
        strict_devices=args.strict_devices,
        fleet=args.fleet,
        fleet_gateways=args.fleet_gateways,
        fail_rate=args.fail_rate,
        token_lifetime=args.token_lifetime,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with emulator as emu:
        creds = emu.credentials
        if args.json:
            info: dict[str, object] = {
                "endpoint": emu.endpoint,
                "access_key_id": creds.access_key_id,
                "access_key_secret": creds.access_key_secret,
                "sts_endpoint": emu.sts_endpoint,
                "metadata_endpoint": emu.metadata_endpoint,
                "credentials_uri": emu.credentials_uri,
            }
            if emu.fleet:
                info["fleet"] = list(emu.fleet)
            print(json.dumps(info), flush=True)
        else:
            # Lines to paste into another shell: the credentials and the endpoint (read by
            # the aioedge command, not by EdgeClient), then a first call.
            print(f"aioedge emulator listening on {emu.endpoint}")
            print(f"  export ALIBABA_CLOUD_ACCESS_KEY_ID={creds.access_key_id}")
            print(f"  export ALIBABA_CLOUD_ACCESS_KEY_SECRET={creds.access_key_secret}")
            print(f"  export {IOT_ENDPOINT_ENV}={emu.endpoint}")
            print("  aioedge call CreateEdgeInstance Name=line_7")
            print(f"inspection: {emu.endpoint}/_emulator/stats")
            if emu.fleet:
                failing = len(emu.failing_instances)
                print(
                    f"fleet: {len(emu.fleet)} instances ({failing} fail their deployments): "
                    f"{emu.endpoint}/_emulator/fleet"
                )
            print(
                f"identity: ALIBABA_CLOUD_STS_ENDPOINT={emu.sts_endpoint}, ECS metadata "
                f"{emu.metadata_endpoint}, ALIBABA_CLOUD_CREDENTIALS_URI={emu.credentials_uri}"
            )
            print("press Ctrl-C to stop", flush=True)
        await stop.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 0
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
