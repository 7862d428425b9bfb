"""The exception tree of invsync, and the exit code of each class.

Every error invsync raises on purpose is an :class:`InvsyncError`. Its message is
one sentence that names the thing that went wrong and the next step. ``cli`` is the
one place that catches these, prints ``Error: <sentence>`` and exits with the
class's ``exit_code``; anything else that escapes is a bug (exit 1). Held for review is
a notice, not an error: ``cli`` prints its sentence once without ``Error:`` (nothing
more when the command already showed it, ``shown``) and exits 3.

    InvsyncError                        exit 1  (base; a bug if raised bare)
    ├── UsageError                      exit 2  a command was used wrongly
    │   ├── RunLockedError              exit 2  another sync holds the data directory's lock
    │   ├── WarehouseBusyError          exit 2  another process held the warehouse too long
    │   └── DecisionsBusyError          exit 2  another process held decisions.sqlite too long
    ├── ConfigError                     exit 2  invsync.toml or the environment is wrong
    │   └── MissingCredentialError      exit 2  live mode without a required secret
    ├── InputError                      exit 2  an input file is invalid; carries row problems
    ├── DataError                       exit 2  a stored file (snapshot, diff) failed validation
    ├── HeldForReviewError              exit 3  the review gate held rows or a whole load
    └── ExternalApiError                exit 4  an outside API failed the run
        ├── ApiAuthError                exit 4  credentials refused (re-consent / fix secrets)
        │   ├── BaseAuthError           exit 4  BASE refused client, refresh or access token
        │   ├── EbayAuthError           exit 4  eBay refused the refresh or a fresh token
        │   └── SpApiForbidden          exit 4  SP-API 403: the access token was refused
        ├── ApiQuotaError               exit 4  a platform quota is spent for now
        │   ├── BaseLimitReached        exit 4  BASE hour/day limit, or our own BASE budget
        │   └── EbayQuotaError          exit 4  Trading API daily call limit (ErrorCode 518)
        ├── ApiRejectedError            exit 4  the request itself was refused; resending fails
        │   ├── BaseItemRejected        exit 4  BASE refused one item (bad_item_id, …)
        │   ├── EbayRequestRejected     exit 4  eBay refused a whole call (HTTP 400)
        │   └── SpApiRequestRejected    exit 4  SP-API 4xx other than 403 and 429
        ├── ReadBackUnavailable         exit 4  a listing's state cannot be read back (GetItem)
        ├── RetryableApiError           exit 4  transient: try the same call again later
        │   ├── ThrottledError          exit 4  HTTP 429: nothing processed; has retry_after
        │   │   └── SpApiThrottled      exit 4  SP-API 429 QuotaExceeded: wait for the bucket
        │   └── TransientApiError       exit 4  5xx, no answer, unusable body: may be applied
        │       └── SpApiTransientError exit 4  the same from SP-API or its LWA endpoint
        └── SpApiCallError              exit 4  any SP-API call failure: code, exchange,
                                                retryable (mixed into the four SpApi* above)

Internal exceptions steer control flow inside one module and never reach the CLI;
they are not InvsyncErrors, so nothing prints them or gives them an exit code:

    FetchInterrupted     internal  a stop was asked for while a batch waited (fetch)
    BudgetSpent          internal  our own BASE call budget for a window is spent (journal);
                                   the loader leaves rows pending, the pull raises
                                   BaseLimitReached
    MoneyError           internal  an SP-API Money object is unusable; becomes the
                                   observation's status (clients.spapi)
    _RetryableAnswer     internal  a 429 or 5xx answer that tenacity retries (clients.http)

``ApiResponseError`` is the old name of :class:`TransientApiError` and still imports.
The client modules re-export the classes once defined in them (``from
pipeline.clients.thebase import BaseItemRejected`` still works).

Messages never contain secrets: build them from our own values, never from
``str()`` of a library exception that may carry headers or tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for annotations only: the clients import this module
    from pipeline.clients.spapi import Exchange


class InvsyncError(Exception):
    """Base of every deliberate invsync error."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(InvsyncError):
    exit_code = 2


class RunLockedError(UsageError):
    """Another sync already runs against this data directory."""


class WarehouseBusyError(UsageError):
    """Another process held ``warehouse.duckdb`` for longer than this command waits."""


class DecisionsBusyError(UsageError):
    """Another process held ``decisions.sqlite`` for longer than a decision waits."""


class ConfigError(InvsyncError):
    exit_code = 2


class MissingCredentialError(ConfigError):
    """Live mode was asked for but a secret is not in the environment or .env."""


@dataclass(frozen=True)
class RowProblem:
    """One reason one input row was rejected. ``row`` is 1-based, header excluded."""

    row: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.column} {self.reason}"


class InputError(InvsyncError):
    """An input file is rejected as a whole; ``problems`` lists every bad row."""

    exit_code = 2

    def __init__(self, message: str, problems: list[RowProblem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class DataError(InvsyncError):
    exit_code = 2


class HeldForReviewError(InvsyncError):
    """Held for review: a notice with exit code 3, never printed as an error."""

    exit_code = 3
    shown = False  # set by a command whose output already holds the sentence


# --- outside APIs ---------------------------------------------------------------------


class ExternalApiError(InvsyncError):
    """An outside API failed. ``code`` is the platform's error code (or ours, e.g.
    ``http_503``), ``http_status`` the answer's status (None: no answer), ``operation``
    the call (``items/edit``, ``getOffers``); the loader writes them to the journal."""

    exit_code = 4

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status
        self.operation = operation


class ApiAuthError(ExternalApiError):
    """Credentials refused: fix the secrets or consent again."""


class BaseAuthError(ApiAuthError):
    """BASE refused the client credentials, the refresh token or the access token."""

    code: str


class EbayAuthError(ApiAuthError):
    """eBay refused the token refresh, or a freshly refreshed token."""

    code: str


class ApiQuotaError(ExternalApiError):
    """A platform quota is spent for now; the rest waits for the next window."""


class BaseLimitReached(ApiQuotaError):
    """``hour_api_limit`` or ``day_api_limit`` (BASE's) or our own budget: stop the shop."""

    code: str


class EbayQuotaError(ApiQuotaError):
    """The Trading API call limit (ErrorCode 518): stop the account."""

    code: str


class ApiRejectedError(ExternalApiError):
    """The platform refused the request itself; ``description`` is its own explanation."""

    code: str

    def __init__(
        self,
        message: str,
        *,
        code: str,
        description: str = "",
        http_status: int | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status, operation=operation)
        self.description = description


class BaseItemRejected(ApiRejectedError):
    """BASE refused one item; ``code`` is BASE's ``error``."""


class EbayRequestRejected(ApiRejectedError):
    """A whole call refused (HTTP 400 at request level); every row in it failed."""


class ReadBackUnavailable(ExternalApiError):
    """The listing's current state cannot be read (e.g. GetItem not offered)."""


class RetryableApiError(ExternalApiError):
    """Try again later: the platform was busy or did not answer usably."""


class ThrottledError(RetryableApiError):
    """429 on every attempt: the platform processed nothing. ``retry_after`` is the last
    ``Retry-After`` it asked for (seconds), when it named one."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = 429,
        operation: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status, operation=operation)
        self.retry_after = retry_after  # seconds


class TransientApiError(RetryableApiError):
    """5xx, no answer or an unusable body: the call may or may not have been applied."""


ApiResponseError = TransientApiError  # the old name


class SpApiCallError(ExternalApiError):
    """One SP-API call failed; carries what the pacer and the run record need.

    Every SP-API failure is one of its four subclasses, each also placed under its kind
    (:class:`ThrottledError`, :class:`TransientApiError`, :class:`ApiRejectedError`,
    :class:`ApiAuthError`). ``exchange`` is the call's
    :class:`pipeline.clients.spapi.Exchange` (timing, status, rate header)."""

    retryable = True
    code: str

    def __init__(self, message: str, code: str, exchange: Exchange | None = None) -> None:
        super().__init__(message, code=code)
        self.exchange = exchange


class SpApiThrottled(SpApiCallError, ThrottledError):
    """HTTP 429 QuotaExceeded: wait for the bucket, then try again."""


class SpApiTransientError(SpApiCallError, TransientApiError):
    """5xx, timeout, connection error or an answer we cannot read: back off, try again."""


class SpApiRequestRejected(SpApiCallError, ApiRejectedError):
    """A request-level 4xx other than 403/429: sending the same request again will not help."""

    retryable = False


class SpApiForbidden(SpApiCallError, ApiAuthError):
    """HTTP 403: the access token was refused (expired or revoked)."""

    retryable = False


# --- internal: never reach the CLI ----------------------------------------------------


class MoneyError(ValueError):
    """A Money object we cannot turn into integer minor units of the expected currency;
    the SP-API parsers turn ``code`` into the observation's status."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
