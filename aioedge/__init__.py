"""aioedge: the asyncio client for the Alibaba Cloud Link IoT Edge API."""

from __future__ import annotations

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

__version__ = "0.1.0"

__all__ = [
    "AlreadyExistsError",
    "ApiError",
    "AuthError",
    "ConflictError",
    "Credentials",
    "CredentialsError",
    "DeploymentError",
    "EdgeError",
    "InvalidParameterError",
    "InvalidResponseError",
    "LimitExceededError",
    "NotFoundError",
    "ServiceUnavailableError",
    "ThrottledError",
    "TransportError",
    "ValidationError",
    "__version__",
]
