"""Create a deployment and watch it, or attach to the one already running (2.12.1, 2.12.4)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from .._catalog import get_operation
from .._errors import ApiError, ConflictError, InvalidResponseError, ValidationError
from .._log import get_logger
from .._wire import int_or_none, is_final, more_pages, stamp, str_or_none
from ._tracker import Caller
from ._watcher import DeploymentWatcher

__all__ = [
    "ALREADY_RUNNING",
    "DEPLOYMENT_TYPES",
    "HistoryEntry",
    "already_running",
    "check_type",
    "deploy_and_watch",
    "find_running_deployment",
    "history_pages",
    "latest_deployment",
    "start_deployment",
]

#: 2.6: the instance has a deployment running already (a ConflictError), which
#: ``attach`` joins and the command line's ``deploy`` hints ``--attach`` for.
ALREADY_RUNNING = "iot.edge.deploySheetAlreadyExist"
_CREATE = "CreateEdgeInstanceDeployment"
_HISTORY = "QueryEdgeInstanceHistoricDeployment"


def _deployment_types() -> tuple[str, ...]:
    param = get_operation(_CREATE).param("Type")
    assert param is not None and param.values is not None  # the catalog's enum
    return param.values


#: CreateEdgeInstanceDeployment's ``Type`` (2.12.1: deploy, reset), read from the catalog:
#: what ``check_type`` takes and the ``--type`` options of the command line offer.
DEPLOYMENT_TYPES = _deployment_types()
_MAX_PAGES = 20


#: One deployment of the history: ``(sort key, deployment id, Status)``; the key orders
#: newest first (``GmtCreateTimestamp``), ties (no timestamps) in the listing's own order.
HistoryEntry = tuple[tuple[int, int], str, "int | None"]


async def history_pages(
    client: Caller, instance_id: str, *, pages: int = _MAX_PAGES
) -> AsyncIterator[list[HistoryEntry]]:
    """QueryEdgeInstanceHistoricDeployment (2.12.4), a page at a time, up to ``pages``;
    pages of the largest size, stopping as ``client.paginate`` does (``_wire.more_pages``)."""
    size = get_operation(_HISTORY).max_page_size or 1
    for page in range(1, pages + 1):
        body = await client.call(
            _HISTORY, {"InstanceId": instance_id, "CurrentPage": page, "PageSize": size}
        )
        data = body.get("Data")
        items = data.get("DeploymentList") if isinstance(data, Mapping) else None
        if not isinstance(items, list):
            items = []
        entries: list[HistoryEntry] = []
        for position, item in enumerate(items):
            dep_id = str_or_none(item.get("DeploymentId")) if isinstance(item, Mapping) else None
            if dep_id:  # read as HistoricDeployment reads it: one rule, in _wire
                created = stamp(item, "GmtCreate") or 0
                key = (-created, (page - 1) * size + position)
                entries.append((key, dep_id, int_or_none(item.get("Status"))))
        yield entries
        answer = data if isinstance(data, Mapping) else {}
        page_size = int_or_none(answer.get("PageSize")) or size
        if not more_pages(page, page_size, len(items), int_or_none(answer.get("Total"))):
            return


async def find_running_deployment(client: Caller, instance_id: str) -> str | None:
    """The id of the instance's running deployment (the newest if several), or None.

    Running is every Status but 2 and 3, an unknown or missing one included, as a watcher
    sees it (:func:`aioedge._wire.is_final`).
    """
    async for entries in history_pages(client, instance_id):
        running = [e for e in entries if not is_final(e[2])]
        if running:
            return min(running)[1]
    return None


async def latest_deployment(client: Caller, instance_id: str) -> tuple[str, bool] | None:
    """``(deployment_id, running)``: the instance's running deployment (the newest if
    several), else its latest one by creation time; ``None`` when it has none.

    What ``aioedge watch INSTANCE`` follows, as ``kubectl rollout status`` needs only a name.
    """
    running: list[HistoryEntry] = []
    ended: list[HistoryEntry] = []
    async for entries in history_pages(client, instance_id):
        for entry in entries:
            (ended if is_final(entry[2]) else running).append(entry)
    if running:
        return min(running)[1], True
    if ended:
        return min(ended)[1], False
    return None


def check_type(type: str) -> str:
    """``type`` if it is one of ``DEPLOYMENT_TYPES`` (``"deploy"`` or ``"reset"``); else a
    ValidationError naming the ``type`` argument.  The one check of it, made when a
    deployment or a rollout is set up (``deploy_and_watch``, ``Rollout``), before any I/O."""
    if type not in DEPLOYMENT_TYPES:
        allowed = " or ".join(repr(t) for t in DEPLOYMENT_TYPES)
        raise ValidationError(f"type must be {allowed}, got {type!r}", param="type", rule="enum")
    return type


def already_running(exc: BaseException) -> bool:
    """Whether ``exc`` says the instance has a deployment running already
    (:data:`ALREADY_RUNNING`): what ``attach`` joins, and what the CLI's ``deploy`` error
    hints ``--attach`` for."""
    return isinstance(exc, ApiError) and exc.code == ALREADY_RUNNING


async def start_deployment(
    client: Caller, instance_id: str, *, type: str = "deploy", attach: bool = False
) -> tuple[str, bool]:
    """Create a ``deploy``/``reset`` deployment; returns ``(deployment_id, attached)``.

    ``type`` was checked by the caller (:func:`check_type`); the client's own validation of
    ``Type`` still stands behind it.  When one is already running
    (``iot.edge.deploySheetAlreadyExist``, a :class:`~aioedge.ConflictError`) and ``attach``
    is true, the running deployment is returned instead (``attached=True``); otherwise the
    error propagates.
    """
    try:
        body = await client.call(_CREATE, {"InstanceId": instance_id, "Type": type})
    except ConflictError as exc:
        if not attach or not already_running(exc):
            raise
        running = await find_running_deployment(client, instance_id)
        if running is None:
            # It finished between our two calls: the instance is free again, so try once more.
            get_logger().info("aioedge.deployment_finished_before_attach", instance_id=instance_id)
            return await start_deployment(client, instance_id, type=type, attach=False)
        get_logger().info(
            "aioedge.deployment_attached", instance_id=instance_id, deployment_id=running
        )
        return running, True
    dep_id = body.get("DeploymentId")
    if not dep_id:
        raise InvalidResponseError(
            "InvalidResponse",
            f"{_CREATE} answered without a DeploymentId",
            action=_CREATE,
        )
    get_logger().info(
        "aioedge.deployment_created", instance_id=instance_id, deployment_id=dep_id, type=type
    )
    return str(dep_id), False


def deploy_and_watch(
    client: Caller,
    instance_id: str,
    *,
    type: str = "deploy",
    attach: bool = False,
    **watch_kwargs: Any,
) -> DeploymentWatcher:
    """Create a deployment and watch it: a :class:`DeploymentWatcher` whose first poll follows
    the creation (done when iteration starts).  ``watch_kwargs`` are those of
    :func:`watch_deployment`; ``watcher.attached`` tells whether an already running
    deployment was joined (``attach=True``).
    """
    check_type(type)

    async def resolve() -> tuple[str, bool]:
        return await start_deployment(client, instance_id, type=type, attach=attach)

    return DeploymentWatcher(client, instance_id, None, resolve=resolve, **watch_kwargs)
