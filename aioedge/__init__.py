"""aioedge: the asyncio client for the Alibaba Cloud Link IoT Edge API."""

from __future__ import annotations

from ._batch import BatchResult, BatchResults, PartialBatchError
from ._client import EdgeClient
from ._credentials import Credentials
from ._errors import (
    AlreadyExistsError,
    ApiError,
    AuthError,
    ConflictError,
    CredentialsError,
    DeploymentError,
    EdgeError,
    InvalidParameterError,
    InvalidResponseError,
    LimitExceededError,
    NotFoundError,
    ServiceUnavailableError,
    ThrottledError,
    TransportError,
    ValidationError,
)
from ._ratelimit import LocalRateLimiter, RateLimiter
from ._retry import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "AlreadyExistsError",
    "ApiError",
    "AuthError",
    "BatchResult",
    "BatchResults",
    "ConflictError",
    "Credentials",
    "CredentialsError",
    "DeploymentError",
    "EdgeClient",
    "EdgeError",
    "InvalidParameterError",
    "InvalidResponseError",
    "LimitExceededError",
    "LocalRateLimiter",
    "NotFoundError",
    "PartialBatchError",
    "RateLimiter",
    "RetryPolicy",
    "ServiceUnavailableError",
    "ThrottledError",
    "TransportError",
    "ValidationError",
    "__version__",
]
