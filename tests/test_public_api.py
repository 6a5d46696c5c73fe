"""The public surface of ../shared/API.md holds exactly."""

from __future__ import annotations

import inspect

import aioedge
import aioedge.testing
from aioedge._catalog import OPERATIONS


def test_all_is_sorted_and_complete() -> None:
    assert aioedge.__all__ == sorted(aioedge.__all__)
    for name in aioedge.__all__:
        assert hasattr(aioedge, name), name


def test_api_md_names_exist() -> None:
    for name in (
        "EdgeClient",
        "Credentials",
        "RetryPolicy",
        "RedisRateLimiter",
        "EdgeError",
        "ValidationError",
        "ApiError",
        "ThrottledError",
        "TransportError",
        "CredentialsError",
    ):
        assert name in aioedge.__all__, name
    assert issubclass(aioedge.ValidationError, aioedge.EdgeError)
    assert issubclass(aioedge.ApiError, aioedge.EdgeError)
    assert issubclass(aioedge.ThrottledError, aioedge.ApiError)
    assert issubclass(aioedge.TransportError, aioedge.EdgeError)
    assert issubclass(aioedge.CredentialsError, aioedge.EdgeError)
    assert hasattr(aioedge.testing, "Emulator")


def test_client_signature_matches_api_md() -> None:
    params = inspect.signature(aioedge.EdgeClient).parameters
    assert list(params)[:6] == [
        "credentials",
        "region_id",
        "endpoint",
        "rate_limit",
        "timeout",
        "retry",
    ]
    assert params["timeout"].default == 10.0 and params["rate_limit"].default is True
    watch = inspect.signature(aioedge.EdgeClient.watch_deployment).parameters
    for name in ("instance_id", "deployment_id", "poll_interval", "max_poll_interval", "timeout"):
        assert name in watch
    assert watch["timeout"].default is None
    batch = inspect.signature(aioedge.EdgeClient.batch).parameters
    assert batch["concurrency"].kind is inspect.Parameter.KEYWORD_ONLY
    redis = inspect.signature(aioedge.RedisRateLimiter).parameters
    assert (
        redis["url"].default == "redis://127.0.0.1:6379/0" and redis["prefix"].default == "aioedge"
    )


def test_one_typed_method_per_operation() -> None:
    for op in OPERATIONS.values():
        method = getattr(aioedge.EdgeClient, op.method_name)
        assert inspect.iscoroutinefunction(method), op.action
        params = inspect.signature(method).parameters
        assert all(
            p.kind is inspect.Parameter.KEYWORD_ONLY for n, p in params.items() if n != "self"
        ), op.action
    assert hasattr(aioedge.EdgeClient, "create_edge_oss_pre_signed_address")
    assert hasattr(aioedge.EdgeClient, "query_device_provisioning")
