"""One reader of QueryEdgeInstanceHistoricDeployment serves attach, watch INSTANCE and rollouts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from aioedge._rollout_run import newest_deployment
from aioedge._wire import is_final
from aioedge.watch._deploy import find_running_deployment, history_pages, latest_deployment
from aioedge.watch._state import DeploymentState


class History:
    """Pages of 30, newest first by GmtCreateTimestamp (either spelling), as the service."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.pages: list[int] = []

    async def call(self, action: str, params: Mapping[str, Any]) -> dict[str, Any]:
        assert action == "QueryEdgeInstanceHistoricDeployment"
        page, size = int(params["CurrentPage"]), int(params["PageSize"])
        self.pages.append(page)
        chunk = self.items[(page - 1) * size : page * size]
        return {"Data": {"Total": len(self.items), "DeploymentList": chunk}}


def _dep(i: int, status: int, stamp_key: str = "GmtCreateTimestamp") -> dict[str, Any]:
    return {"DeploymentId": f"d{i}", "Status": str(status), stamp_key: 1000 + i}


async def test_the_newest_wins_across_spellings_and_pages() -> None:
    items = [_dep(i, 2) for i in range(40)]  # 40 ended: two pages
    items[35] = _dep(35, 1, "GmtCreateTimeStamp")  # running, on page 2, the other spelling
    items[3] = _dep(99, 2, "GmtCreateTimeStamp")  # the newest of all, ended, on page 1
    history = History(items)
    assert await latest_deployment(history, "i") == ("d35", True)
    assert history.pages == [1, 2]
    assert await find_running_deployment(History(items), "i") == "d35"
    assert await newest_deployment(History(items), "i") == ("d99", 2)  # the first page only
    ended = [_dep(i, 3) for i in range(5)]
    assert await latest_deployment(History(ended), "i") == ("d4", False)
    assert await find_running_deployment(History(ended), "i") is None
    assert await latest_deployment(History([]), "i") is None


async def test_the_listing_order_breaks_ties_and_odd_entries_are_skipped() -> None:
    items: list[dict[str, Any]] = [
        {"DeploymentId": "a", "Status": 1},
        {"DeploymentId": "b", "Status": 1},
        {"Status": 1},
        "junk",  # type: ignore[list-item]
    ]
    pages = [page async for page in history_pages(History(items), "i")]
    assert [[e[1] for e in page] for page in pages] == [["a", "b"]]
    assert await find_running_deployment(History(items), "i") == "a"


@pytest.mark.parametrize("status", [0, 1, 2, 3, "2", 4, -1, "x", "", None])
async def test_the_history_and_the_watcher_agree_on_what_has_ended(status: Any) -> None:
    # One rule (aioedge._wire.is_final): only 2 and 3 are ended.  An unknown or missing
    # Status is still going on for every reader, so the watcher never waits on a
    # deployment the history lookup (attach, `aioedge watch INSTANCE`, rollouts) calls
    # ended, nor the reverse.
    item: dict[str, Any] = {"DeploymentId": "d1", "GmtCreateTimestamp": 1000}
    if status is not None:
        item["Status"] = status
    watched = DeploymentState.from_response({"Data": item})
    ended = status in (2, 3, "2")
    assert watched.is_final is ended
    assert await latest_deployment(History([item]), "i") == ("d1", not ended)
    assert await find_running_deployment(History([item]), "i") == (None if ended else "d1")
    newest = await newest_deployment(History([item]), "i")
    assert newest is not None and is_final(newest[1]) is ended
