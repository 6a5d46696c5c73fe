"""Serve ``aioedge.testing.Emulator`` with any of its options, in a process of its own.

``python -m aioedge.testing`` covers the common options; benchmarks also need a stage
length and extra access keys (whose quotas are separate: benchmark set-up can run beside
the measured key without touching its quota).  Prints one JSON line (endpoint, the main
key, the extra keys), then serves until SIGTERM/SIGINT.

    python bench/emulator_host.py --options '{"quota_scale": 20, "stage_seconds": 1.5}' \\
        --extra-keys 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from typing import Any

from aioedge import Credentials
from aioedge.testing import Emulator


def extra_keys(n: int) -> list[Credentials]:
    """Deterministic extra key pairs (fake ones, for the emulator only)."""
    return [
        Credentials(f"LTAI5tBenchSetupKey{i:04d}", f"bench-setup-secret-{i:04d}") for i in range(n)
    ]


async def serve(options: dict[str, Any], n_extra: int) -> None:
    keys = extra_keys(n_extra)
    emulator = Emulator(**options, access_keys=keys)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with emulator as emu:
        info = {
            "endpoint": emu.endpoint,
            "access_key_id": emu.credentials.access_key_id,
            "access_key_secret": emu.credentials.access_key_secret,
            "extra_keys": [[k.access_key_id, k.access_key_secret] for k in keys],
            "pid": os.getpid(),
        }
        print(json.dumps(info), flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--options", default="{}", help="Emulator(**options) as a JSON object")
    parser.add_argument("--extra-keys", type=int, default=0, help="extra access keys to accept")
    args = parser.parse_args()
    asyncio.run(serve(json.loads(args.options), args.extra_keys))


if __name__ == "__main__":
    main()
