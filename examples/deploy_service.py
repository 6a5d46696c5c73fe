"""A deployment service: deploy and watch edge instances from a long-running asyncio process.

Shows how aioedge fits a service rather than a script:

* **structlog JSON logs.**  The application configures structlog (a JSON line per event on
  stdout); aioedge never configures logging, it logs through whatever the application set
  up, so its own events (``aioedge.deployment_created``, ``aioedge.watch_finished``,
  ``aioedge.retry_scheduled``, … and ``aioedge.request_sent`` at ``--log-level debug``)
  arrive in the same stream as the service's ``deploy.*`` events.
* **Deploy and watch.**  ``client.deploy(instance, attach=True)`` creates a deployment, or
  joins the one already running (a restarted service picks up where it left off), and
  streams its events until the rollout ends; every instance is watched concurrently and all
  the watchers share one client, one session and the quotas.
* **Metrics.**  ``--metrics-port PORT`` serves Prometheus metrics at ``/metrics`` (from
  ``aioedge.prometheus.PrometheusHooks``: calls, durations, retries, throttles, quota waits
  and the limiter's state; ``pip install 'aioedge[prometheus]'``), on the service's own
  event loop; ``--progress-timeout`` ends a watch whose deployment stopped moving as
  ``stalled``.
* **Graceful shutdown.**  SIGINT or SIGTERM cancels the watchers cleanly (no task leaks, the
  session closes), logs the deployments still in flight — they go on in the cloud — and
  exits 0.

The service deploys every ``--instance`` once a round, every ``--interval`` seconds, until
it is stopped or ``--rounds`` rounds are done (then it exits 0 if the last round succeeded
everywhere, else 1).

Against the emulator (``--seed-demo`` adds an instance with two gateways and four
devices)::

    aioedge emulator --port 8123 --speed 2 &
    export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI5tEmulatorAccessKeyId
    export ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-access-key-secret
    python examples/deploy_service.py --endpoint http://127.0.0.1:8123 --seed-demo --rounds 2 \\
        --interval 5

Between two rounds it logs ``deploy.next_round`` with the wait (``--interval``, 60 s by
default), so a quiet minute is not mistaken for a hang.

Against your account: ``python examples/deploy_service.py --instance ID [--instance ID …]``
(this really deploys them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

import structlog
from _setup import add_connection_args, make_client, run, seed_fleet
from aiohttp import web

import aioedge
from aioedge.watch import DeploymentEvent


def configure_logging(level: str) -> None:
    """JSON lines on stdout: one object per event, ISO UTC timestamps, a level field."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )


class DeployService:
    """Deploys a set of instances round after round; one client shared by every watcher."""

    def __init__(
        self,
        client: aioedge.EdgeClient,
        instances: Sequence[str],
        *,
        interval: float,
        rounds: int | None,
        timeout: float | None,
        progress_timeout: float | None = None,
    ) -> None:
        self.client = client
        self.instances = list(instances)
        self.interval = interval
        self.rounds = rounds
        self.timeout = timeout
        self.progress_timeout = progress_timeout
        self.in_flight: dict[str, str | None] = {}  # instance → deployment being watched
        self.log = structlog.get_logger("deploy_service")

    async def run(self) -> int:
        round_no = 0
        while True:
            round_no += 1
            structlog.contextvars.bind_contextvars(round=round_no)
            self.log.info("deploy.round_started", instances=len(self.instances))
            outcomes = await asyncio.gather(*(self.deploy_one(i) for i in self.instances))
            ok = all(o == "succeeded" for o in outcomes)
            self.log.info(
                "deploy.round_finished",
                succeeded=sum(o == "succeeded" for o in outcomes),
                failed=sum(o != "succeeded" for o in outcomes),
            )
            if self.rounds is not None and round_no >= self.rounds:
                return 0 if ok else 1
            # Say so before waiting: a quiet minute looks like a hang.
            self.log.info("deploy.next_round", next_round=round_no + 1, in_seconds=self.interval)
            await asyncio.sleep(self.interval)

    async def deploy_one(self, instance_id: str) -> str:
        """Deploy (or attach to the running deployment) and watch; returns the outcome."""
        log = self.log.bind(instance_id=instance_id)
        self.in_flight[instance_id] = None
        watcher = self.client.deploy(
            instance_id,
            attach=True,
            poll_interval=0.2,
            max_poll_interval=2.0,
            timeout=self.timeout,
            progress_timeout=self.progress_timeout,
        )
        outcome = "error"
        try:
            async for event in watcher:
                self.in_flight[instance_id] = event.deployment_id
                fields = _fields(event)
                if event.kind == "final":
                    outcome = event.outcome or "error"
                    level = "info" if outcome == "succeeded" else "error"
                    log.log(getattr(logging, level.upper()), "deploy.finished", **fields)
                elif event.kind == "poll_error" or (event.log is not None and event.log.failed):
                    log.warning("deploy.event", **fields)
                else:
                    log.info("deploy.event", **fields)
        except aioedge.EdgeError as err:
            # The service says no (no gateway, instance gone, …): log it, keep the service up.
            log.error(
                "deploy.error",
                error=type(err).__name__,
                code=getattr(err, "code", None),
                request_id=getattr(err, "request_id", None),
                message=str(err),
            )
        self.in_flight.pop(instance_id, None)
        return outcome


async def serve_metrics(registry: Any, port: int) -> tuple[web.AppRunner, int]:
    """``GET /metrics`` on 127.0.0.1:``port`` (0: a free one) in the running event loop."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or ()
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)


def _fields(event: DeploymentEvent) -> dict[str, Any]:
    """The event's fields without the empty ones (``kind`` renamed: ``event`` is taken)."""
    out = {k: v for k, v in event.to_dict().items() if v is not None and v is not False}
    out["deploy_kind"] = out.pop("kind")
    return out


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_connection_args(parser, seed_help="add a demo instance to deploy")
    parser.add_argument("--instance", action="append", default=[], help="instance to deploy")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between rounds")
    parser.add_argument("--rounds", type=int, default=None, help="stop after this many rounds")
    parser.add_argument("--timeout", type=float, default=None, help="per deployment, in seconds")
    parser.add_argument(
        "--progress-timeout",
        type=float,
        default=None,
        help="end a watch as stalled when no stage or status changed for this many seconds",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics at http://127.0.0.1:PORT/metrics (0: a free port)",
    )
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    args = parser.parse_args(argv)

    # Before the first client exists: aioedge picks structlog up once it is configured.
    configure_logging(args.log_level)
    log = structlog.get_logger("deploy_service")

    stop = asyncio.Event()
    received: list[str] = []
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):

        def on_signal(sig: signal.Signals = sig) -> None:
            received.append(sig.name)
            stop.set()

        loop.add_signal_handler(sig, on_signal)

    hooks: list[Any] = []
    metrics_runner: web.AppRunner | None = None
    if args.metrics_port is not None:
        from prometheus_client import CollectorRegistry

        from aioedge.prometheus import PrometheusHooks

        registry = CollectorRegistry()
        hooks.append(PrometheusHooks(registry=registry))
        metrics_runner, port = await serve_metrics(registry, args.metrics_port)
        log.info("service.metrics", url=f"http://127.0.0.1:{port}/metrics")

    async with make_client(args, hooks=hooks) as client:
        if args.seed_demo:
            fleet = await seed_fleet(client, "service_demo", gateways=2, devices=4)
            args.instance.append(fleet.instance_id)
        if not args.instance:
            parser.error("give at least one --instance (or --seed-demo)")
        service = DeployService(
            client,
            args.instance,
            interval=args.interval,
            rounds=args.rounds,
            timeout=args.timeout,
            progress_timeout=args.progress_timeout,
        )
        log.info("service.started", instances=args.instance, endpoint=client.endpoint)
        work = asyncio.create_task(service.run())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            stopper.cancel()
            code = work.result()
        else:
            # Cancelling the task closes every watcher (``async for`` ends cleanly); the
            # rollouts themselves go on in the cloud, and attach=True rejoins them later.
            log.info(
                "service.stopping",
                signal=received[0] if received else None,
                in_flight=[
                    {"instance_id": i, "deployment_id": d} for i, d in service.in_flight.items()
                ],
            )
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            code = 0
    if metrics_runner is not None:
        await metrics_runner.cleanup()
    log.info("service.stopped", exit_code=code)
    return code


if __name__ == "__main__":
    sys.exit(run(main()))
