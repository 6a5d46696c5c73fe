"""One of several processes watching the same deployments through a RedisCoordinator.

Run by tests/test_coordinator.py as ``python tests/coordinated_watcher.py CONFIG.json``: it
prints ``{"ready": true}`` once started, reads one JSON line of (instance, deployment) pairs
from stdin, watches them with one ``DeploymentMonitor`` sharing a ``RedisCoordinator`` and a
``RedisRateLimiter`` with its siblings, and prints each event it hands out as one JSON line
(flushed), then ``{"done": polls}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from aioedge import DeploymentMonitor, EdgeClient, RedisCoordinator, RedisRateLimiter


async def main(path: str) -> None:
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    limiter = RedisRateLimiter(
        config["redis"], prefix=config["prefix"], overrides=config.get("overrides") or None
    )
    coordinator = (
        RedisCoordinator(config["redis"], prefix=config["prefix"], lease=config["lease"])
        if config.get("coordinated", True)
        else None
    )
    print(json.dumps({"ready": True}), flush=True)
    pairs = json.loads(await asyncio.to_thread(sys.stdin.readline))
    async with EdgeClient(endpoint=config["endpoint"], rate_limit=limiter) as client:
        monitor = DeploymentMonitor(
            client,
            coordinator=coordinator,
            poll_interval=config["poll_interval"],
            max_poll_interval=config["max_poll_interval"],
        )
        async with monitor:
            for instance_id, deployment_id in pairs:
                monitor.add(instance_id, deployment_id)
            async for event in monitor:
                print(json.dumps(event.to_dict()), flush=True)
        print(json.dumps({"done": monitor.stats.polls}), flush=True)
    await limiter.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
