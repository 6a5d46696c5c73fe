"""Fleet rollout: deploy many edge instances in waves, stop when too many fail, resume.

``client.rollout()`` starts a wave (a count or a share of the fleet) once every deployment
of the one before has ended, watches them all through one ``DeploymentMonitor`` (so the
5-QPS GetEdgeInstanceDeployment budget is shared round robin), and aborts, starting nothing
more, once the failed share of the finished deployments passes ``--max-failures``.  With
``--store`` the rollout keeps a record in a JSON file: kill it at any point and run the same
command again, and it continues without starting any deployment twice.

This prints a line per wave, one per instance that did not succeed, and a summary (``--json``:
the result as JSON); exit 0 when every instance succeeded, 1 otherwise.

Against the emulator, with a fleet of 50 instances of which 10 % fail::

    aioedge emulator --port 8123 --fleet 50 --fail-rate 0.1 --speed 10 &
    export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI5tEmulatorAccessKeyId
    export ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-access-key-secret
    export ALIBABA_CLOUD_IOT_ENDPOINT=http://127.0.0.1:8123
    python examples/fleet_rollout.py --emulator-fleet --waves 1,10%,100% --max-failures 30%

Against your account: list the instance ids in a file (one per line) and pass
``--from-file FILE``, or name them as arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path

from _setup import add_connection_args, make_client, run


def _emulator_fleet(endpoint: str) -> list[str]:
    """The instance ids of a local emulator started with ``--fleet N``."""
    if not endpoint.startswith(("http://127.0.0.1", "http://localhost")):
        raise SystemExit("error: --emulator-fleet needs a local emulator's --endpoint")
    with urllib.request.urlopen(f"{endpoint}/_emulator/fleet", timeout=10) as resp:
        return list(json.loads(resp.read())["instances"])


async def main(args: argparse.Namespace) -> int:
    ids = list(args.instances)
    if args.from_file:
        lines = Path(args.from_file).read_text(encoding="utf-8").splitlines()
        ids += [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]
    if args.emulator_fleet:
        ids += _emulator_fleet(args.endpoint or "")
    async with make_client(args) as client:
        rollout = client.rollout(
            ids,
            waves=args.waves,  # "1,25%,100%": counts and percentages
            max_failures=args.max_failures,  # "20%" or 0.2
            store=args.store,
        )
        async with rollout:
            async for event in rollout:
                if event.kind == "wave" and not args.json:
                    print(f"wave {event.wave}: {len(event.instance_ids)} instance(s)", flush=True)
                elif event.kind == "aborted" and not args.json:
                    print(f"aborted: {event.reason}", flush=True)
                elif event.outcome not in (None, "succeeded") and not args.json:
                    error = f" ({event.event.error})" if event.event and event.event.error else ""
                    print(f"  {event.instance_id}: {event.outcome}{error}", flush=True)
        result = rollout.result
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(
            f"{len(result.succeeded)} succeeded, {len(result.failed)} failed, "
            f"{len(result.skipped)} skipped{' (aborted)' if result.aborted else ''}"
        )
    return 0 if result.ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_connection_args(parser)
    parser.add_argument("instances", nargs="*", metavar="INSTANCE")
    parser.add_argument("--from-file", metavar="FILE", help="instance ids, one per line")
    parser.add_argument(
        "--emulator-fleet", action="store_true", help="every instance of a local emulator's fleet"
    )
    parser.add_argument("--waves", default="1,25%,100%", help="cumulative (default 1,25%%,100%%)")
    parser.add_argument("--max-failures", default="20%", help="abort above this failed share")
    parser.add_argument("--store", metavar="FILE", help="resumable: the rollout's record")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(run(main(parse_args())))
