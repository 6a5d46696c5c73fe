"""Everything aioedge raises on purpose, and the service-code → exception mapping.

The tree::

    EdgeError
    ├── ValidationError            bad input, raised before any network I/O
    ├── CredentialsError           no usable credentials (.transient: the identity service
    │                                hiccupped; retried like a 503)
    ├── TransportError             network failure or timeout (.maybe_executed)
    │   ├── DeadlineExceededError  not sent: too little time left (aioedge._retry)
    │   └── RedisUnavailableError  not sent: the shared limiter's Redis failed (aioedge._redis)
    ├── DeploymentError            a watched deployment could not be followed
    ├── PartialBatchError          some chunks of a split call failed (aioedge._batch)
    └── ApiError                   the service said no (.code, .message, .request_id, ...)
        ├── ThrottledError         Throttling*, iot.common.HighFrequentDeny, HTTP 429
        ├── ServiceUnavailableError  HTTP 5xx / iot.system.* / ServiceUnavailable*: transient
        ├── AuthError              signature, AccessKey, permission, tenant problems
        ├── InvalidParameterError  the service rejected a parameter
        ├── NotFoundError          *NotExist, *NotBindToInstance, ...
        ├── AlreadyExistsError     *Exist, *AlreadyBind*, ...
        ├── LimitExceededError     *Limitation, ParameterSizeLimit
        ├── ConflictError          busy / in progress / wrong state (deploySheetAlreadyExist...)
        └── InvalidResponseError   the answer could not be parsed (non-JSON, truncated)

The three subclasses defined elsewhere live next to the code that raises them; all are
importable from ``aioedge`` (a test checks this drawing and docs/concepts/errors.md list every
one).  This module is pure: no I/O, no clocks.  An ApiError carries the service's own text, which
may quote the client's secrets (SignatureDoesNotMatch ends with the service's string-to-sign,
SecurityToken included): ``EdgeClient`` masks them in every error it raises
(``aioedge._protocol.redact_error``).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

__all__ = [
    "AlreadyExistsError",
    "ApiError",
    "AuthError",
    "ConflictError",
    "CredentialsError",
    "DeploymentError",
    "EdgeError",
    "InvalidParameterError",
    "InvalidResponseError",
    "LimitExceededError",
    "NotFoundError",
    "TRANSIENT_ERRORS",
    "ServiceUnavailableError",
    "ThrottledError",
    "TransportError",
    "ValidationError",
    "error_class_for",
    "error_code",
    "is_throttling",
    "is_transient",
    "may_have_run",
    "one_line",
    "printable",
    "turned_away",
]


class EdgeError(Exception):
    """Root of everything aioedge raises on purpose."""


class ValidationError(EdgeError, ValueError):
    """Bad input, raised before any network I/O.

    ``param`` is the wire name (``"IotIds.3"``, ``"PageSize"``), or the path of a member
    inside a JSON-string parameter (``"ContainerConfig.portMappings[0].hostPort"``), and
    ``rule`` a short machine-readable tag (``required``, ``unknown``, ``type``,
    ``encoding``, ``range``, ``enum``, ``min_length``, ``max_length``, ``pattern``,
    ``max_items``, ``format``, ``dependency``).
    """

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        rule: str = "invalid",
        action: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.rule = rule
        self.action = action


class CredentialsError(EdgeError):
    """No usable credentials: none found (``tried`` lists the sources consulted), a source
    configured wrongly, or a key that could not be refreshed.

    ``source`` names where the key was to come from (``"STS AssumeRoleWithOIDC"``, a file
    and profile, ...); ``code`` and ``request_id`` are the identity service's answer when
    it gave one.  ``transient``: the identity service could not be reached, failed (HTTP 5xx)
    or throttled the request, so a later try may well succeed; nothing was sent to Link IoT
    Edge, so the client retries the call (a mutating one too) and a watch polls again.
    ``retry_after``: the seconds until the provider asks again (its backoff), the least the
    next try waits.  Never holds a secret.
    """

    def __init__(
        self,
        message: str,
        *,
        tried: tuple[str, ...] = (),
        source: str | None = None,
        code: str | None = None,
        request_id: str | None = None,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.tried = tried
        self.source = source
        self.code = code
        self.request_id = request_id
        self.transient = transient
        self.retry_after = retry_after


class TransportError(EdgeError):
    """A network failure or timeout.

    ``maybe_executed`` is True when the request may have reached the service, so a
    mutating call must not be repeated blindly.  ``cause``: the network error behind it, as
    text (it is not chained: its frames hold the signed request).
    """

    def __init__(
        self,
        message: str,
        *,
        action: str | None = None,
        maybe_executed: bool = True,
        attempts: int = 1,
        cause: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.action = action
        self.maybe_executed = maybe_executed
        self.attempts = attempts
        # The network error behind it, summarised (type and text): the exception itself is
        # not chained, as its frames hold the signed request.
        self.cause = cause


class DeploymentError(EdgeError):
    """A deployment could not be watched to its end (vanished, or watch timed out)."""

    def __init__(self, message: str, *, deployment_id: str | None = None) -> None:
        super().__init__(message)
        self.deployment_id = deployment_id


class ApiError(EdgeError):
    """The service answered with an error."""

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        request_id: str | None = None,
        http_status: int | None = None,
        action: str | None = None,
        body: Any = None,
        recommend: str | None = None,
        attempts: int = 1,
    ) -> None:
        self.code = code
        self.message = message
        self.request_id = request_id
        self.http_status = http_status
        self.action = action
        self.body = body
        self.recommend = recommend
        self.attempts = attempts
        self.server_time: float | None = None  # the service's Date header, for clock skew
        # Seconds from the service's x-acs-retry-after (only on an answer the service
        # turned_away: throttled, or a not_executed 503): the least the next attempt waits,
        # and the least this Action's slot is held.
        self.retry_after: float | None = None
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [f"{self.code}: {self.message}" if self.message else self.code]
        if self.action:
            parts.append(f"action={self.action}")
        if self.http_status is not None:
            parts.append(f"http_status={self.http_status}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts) if len(parts) == 1 else f"{parts[0]} ({', '.join(parts[1:])})"

    def __reduce__(self) -> Any:  # keep keyword-only fields across pickling (multiprocessing)
        return (
            _rebuild_api_error,
            (
                type(self),
                self.code,
                self.message,
                {
                    "request_id": self.request_id,
                    "http_status": self.http_status,
                    "action": self.action,
                    "attempts": self.attempts,
                },
            ),
        )


def _rebuild_api_error(
    cls: type[ApiError], code: str, message: str, kwargs: dict[str, Any]
) -> ApiError:
    return cls(code, message, **kwargs)


class ThrottledError(ApiError):
    """The service throttled the call; it was not executed."""


class ServiceUnavailableError(ApiError):
    """A transient failure on the service side (HTTP 5xx, iot.system.*)."""

    @property
    def not_executed(self) -> bool:
        """True when the request certainly did not run: a 503 (``ServiceUnavailable*``) is
        the gateway refusing before the work starts; a 500 InternalError or an iot.system.*
        answer may come from half-done work."""
        return self.http_status == 503 or _is_unavailable_code(self.code)


class AuthError(ApiError):
    """Signature, AccessKey, STS token, permission or tenant problem."""


class InvalidParameterError(ApiError):
    """The service rejected a parameter that passed local validation."""


class NotFoundError(ApiError):
    """The referenced resource does not exist (or is not bound where it was expected)."""


class AlreadyExistsError(ApiError):
    """The resource (or binding) already exists."""


class LimitExceededError(ApiError):
    """A count or size limit was reached."""


class ConflictError(ApiError):
    """The resource is busy or in a state that forbids the call (e.g. a deployment runs)."""


class InvalidResponseError(ApiError):
    """The service's answer could not be understood (non-JSON, truncated, wrong shape)."""


#: Errors after which the same request may well succeed: the service throttled it or was
#: briefly unavailable, the network failed, or the answer could not be read.  With a
#: ``CredentialsError`` that is ``transient``, what :func:`is_transient` says.
TRANSIENT_ERRORS: tuple[type[EdgeError], ...] = (
    ThrottledError,
    ServiceUnavailableError,
    TransportError,
    InvalidResponseError,
)


def is_transient(error: BaseException) -> bool:
    """Whether the same request may well succeed later: one of :data:`TRANSIENT_ERRORS`, or a
    ``CredentialsError`` whose identity service hiccupped (``transient``).  What a read-only
    Action is retried through (``_retry.is_retryable``) and what a watch polls again after
    (``watch._tracker.Tracker.on_error``); a mutating Action only when not
    :func:`may_have_run` (a key that could not be had: nothing was sent)."""
    if isinstance(error, CredentialsError):
        return error.transient
    return isinstance(error, TRANSIENT_ERRORS)


def may_have_run(error: EdgeError) -> bool:
    """Whether the service may have executed the request that failed with ``error``.

    True for a ``TransportError`` whose request may have reached it (``maybe_executed``), an
    answer that could not be read (``InvalidResponseError``) and a service failure other than
    a refusal before the work (``ServiceUnavailableError`` but not ``not_executed``).  False
    for a throttled request (ERRATA "Responses": not executed), any other answer (the service
    said no) and an error raised before sending.  The one rule behind "never repeat a
    mutating call that may have run" (``_retry``), a batch chunk's ``unknown``, the CLI's
    "the call may have run" and a rollout's look for the deployment a failed create made.
    """
    if isinstance(error, TransportError):
        return error.maybe_executed
    if isinstance(error, InvalidResponseError):
        return True
    if isinstance(error, ServiceUnavailableError):
        return not error.not_executed
    return False


def turned_away(error: EdgeError) -> bool:
    """Did the service refuse ``error``'s request before running it, asking to be asked again
    (throttled, or a ``ServiceUnavailableError`` that is ``not_executed``)?  Only such an
    answer's ``x-acs-retry-after`` hint is read (``_protocol``)."""
    if isinstance(error, ThrottledError):
        return True
    return isinstance(error, ServiceUnavailableError) and error.not_executed


def _is_unavailable_code(code: str) -> bool:
    """``ServiceUnavailable`` and its variants (``ServiceUnavailableTemporary``, ...): the
    gateway's refusal before the work, whatever the HTTP status it came with.  One test for
    :func:`error_class_for` (the class) and ``ServiceUnavailableError.not_executed``."""
    return code.startswith("ServiceUnavailable")


_THROTTLING_CODES = frozenset({"iot.common.HighFrequentDeny", "ServiceUnavailable.Throttling"})

_EXACT: dict[str, type[ApiError]] = {
    "iot.common.InvalidParam": InvalidParameterError,
    "iot.common.InvalidFormattedParameter": InvalidParameterError,
    "iot.common.ParameterSizeLimit": LimitExceededError,
    "iot.common.InvalidTenant": AuthError,
    "iot.common.AuthActionPermissionDeny": AuthError,
    "iot.common.RamActionPermissionDeny": AuthError,
    "iot.common.APINotSupportedInInstance": InvalidParameterError,
    "iot.device.DeviceNotGateway": InvalidParameterError,
    "iot.device.DeviceNotSubDevice": InvalidParameterError,
    "iot.device.NotExistedDevice": NotFoundError,
    "iot.device.Disabled": ConflictError,
    "iot.device.DeviceAlreadyBindToOtherInstance": AlreadyExistsError,
    "iot.edge.deploySheetAlreadyExist": ConflictError,
    "iot.edge.deploySheetAlreadyFinish": ConflictError,
    "iot.edge.InstanceIsRunning": ConflictError,
    "iot.edge.InstanceHasDevice": ConflictError,
    "iot.edge.InstanceHasDriver": ConflictError,
    "iot.edge.InstanceHasNoGateway": ConflictError,
    "iot.edge.InstanceAuthorized": AuthError,
    "iot.edge.InstanceHasSameNameDriver": AlreadyExistsError,
    "iot.edge.InstanceAlreadyBindGateway": AlreadyExistsError,
    "iot.edge.DriverHasDevice": ConflictError,
    "iot.edge.DriverHasReleasedVersion": ConflictError,
    "iot.edge.DriverVersionHasBeenReleased": ConflictError,
    "iot.edge.ReleasedVersionCannotBeDeletedOrModified": ConflictError,
    "iot.edge.PurchasedDriverCannotAccessUnreleasedVersion": AuthError,
    "iot.edge.DriverVersionAlreadyBindToInstance": ConflictError,
    "iot.edge.DriverNameProtocolRuntimeCpuArchMustBeUnique": AlreadyExistsError,
    "iot.edge.DriverOssContentNotExist": NotFoundError,
    "iot.edge.GatewayDisable": ConflictError,
    "iot.edge.GatewayInactive": ConflictError,
    "iot.edge.GatewayOffline": ConflictError,
    "iot.edge.DeviceInactive": ConflictError,
    "iot.edge.DeviceDebugDisable": ConflictError,
    "iot.edge.DeviceNotMatchDriverProtocol": InvalidParameterError,
    "iot.edge.DeviceAlreadyAttachOtherDriver": ConflictError,
    "iot.edge.DeviceNotAttachDriver": ConflictError,
    "iot.edge.DeviceNotAttachSameDriver": ConflictError,
    "iot.edge.DeviceConfigIllegal": InvalidParameterError,
    "iot.edge.DriverConfigIllegal": InvalidParameterError,
    # POP gateway codes (2.3, 2.5, common Alibaba Cloud answers)
    "SignatureDoesNotMatch": AuthError,
    "SignatureNonceUsed": AuthError,
    "IncompleteSignature": AuthError,
    "InvalidAccessKeyId.NotFound": AuthError,
    "InvalidAccessKeyId.Inactive": AuthError,
    "InvalidSecurityToken.Expired": AuthError,
    "InvalidSecurityToken.Malformed": AuthError,
    "InvalidSecurityToken.MismatchWithAccessKey": AuthError,
    "Forbidden.RAM": AuthError,
    "InvalidTimeStamp.Expired": AuthError,
    "InvalidTimeStamp.Format": InvalidParameterError,
    "MissingParameter": InvalidParameterError,
    "InvalidParameter": InvalidParameterError,
    "InvalidVersion": InvalidParameterError,
    "InvalidAction.NotFound": InvalidParameterError,
    "UnsupportedOperation": InvalidParameterError,
    "InternalError": ServiceUnavailableError,
}

# Suffix rules, tried in order on the last dotted component.
_SUFFIX_RULES: tuple[tuple[re.Pattern[str], type[ApiError]], ...] = (
    (re.compile(r"(NotExist|NotExisted|NotFound|NotBindToInstance)$"), NotFoundError),
    (re.compile(r"(Limitation|LimitExceeded|Limit)$"), LimitExceededError),
    (re.compile(r"(AlreadyExist|Exist|AlreadyBindToInstance|AlreadyBind)$"), AlreadyExistsError),
    (re.compile(r"(PermissionDeny|Forbidden|Unauthorized)$"), AuthError),
)


#: Unicode categories that break a line or steer a terminal: control characters (C0, DEL,
#: C1: newline, carriage return, escape ...) and the line and paragraph separators.
_UNPRINTABLE = frozenset({"Cc", "Zl", "Zp"})


def printable(text: str) -> str:
    """``text`` with every control character or line break escaped (``\\n``, ``\\x1b``).

    Identifiers, names and messages come from services; escaping (rather than dropping)
    keeps two different ones different, and keeps an error, a ``str(event)`` or a tree row
    on one line.
    """
    if text.isprintable():
        return text
    return "".join(
        repr(ch)[1:-1] if unicodedata.category(ch) in _UNPRINTABLE else ch for ch in text
    )


def one_line(text: str, limit: int | None = None) -> str:
    """Free text on one line, for a message or a display: runs of whitespace (line breaks
    too) become one space and what is left unprintable is escaped (:func:`printable`);
    with ``limit``, cut to that many characters, the last an ellipsis."""
    flat = printable(" ".join(text.split()))
    return flat if limit is None or len(flat) <= limit else flat[: limit - 1] + "…"


def is_throttling(code: str | None, http_status: int | None = None) -> bool:
    """True for every form in which the service says "too many requests" (ERRATA: Responses)."""
    if http_status == 429:
        return True
    if not code:
        return False
    return code in _THROTTLING_CODES or code.startswith("Throttling")


def error_code(exc: BaseException) -> str:
    """An error's short name wherever one is shown (a ``final`` or ``poll_error`` event's
    ``error``, a hook's ``CallInfo.code``, a span's ``error.type``): the service's code for
    an :class:`ApiError`, else the exception's class name (a ``CredentialsError``'s ``code``
    is the identity service's and may be None)."""
    return exc.code if isinstance(exc, ApiError) else type(exc).__name__


def error_class_for(code: str, http_status: int | None = None) -> type[ApiError]:
    """Map a service error code (and HTTP status) onto the exception class to raise."""
    if is_throttling(code, http_status):  # ServiceUnavailable.Throttling among them
        return ThrottledError
    if _is_unavailable_code(code):
        return ServiceUnavailableError
    cls = _EXACT.get(code)
    if cls is not None:
        return cls
    if code.startswith("iot.system.") or (http_status is not None and http_status >= 500):
        return ServiceUnavailableError
    last = code.rsplit(".", 1)[-1]
    for pattern, rule_cls in _SUFFIX_RULES:
        if pattern.search(last):
            return rule_cls
    if code.startswith(("InvalidAccessKey", "InvalidSecurityToken", "Forbidden")):
        return AuthError
    if code.startswith(("Invalid", "Missing")):
        return InvalidParameterError
    return ApiError
