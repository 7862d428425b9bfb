"""The exception tree of invsync, and the exit code of each class.

Every error invsync raises on purpose is an :class:`InvsyncError`. Its message is
one sentence that names the thing that went wrong and the next step. ``cli`` is the
one place that catches these, prints ``Error: <sentence>`` and exits with the
class's ``exit_code``; anything else that escapes is a bug (exit 1).

    InvsyncError                      exit 1  (base; a bug if raised bare)
    ├── UsageError                    exit 2  a command was used wrongly
    │   └── RunLockedError            exit 2  another sync holds the data directory's lock
    ├── ConfigError                   exit 2  invsync.toml or the environment is wrong
    │   └── MissingCredentialError    exit 2  live mode without a required secret
    ├── InputError                    exit 2  an input file is invalid; carries row problems
    ├── DataError                     exit 2  a stored file (snapshot, diff) failed validation
    ├── HeldForReviewError            exit 3  the review gate held rows or a whole load
    └── ExternalApiError              exit 4  an outside API failed the run
        ├── ApiAuthError              exit 4  credentials refused (re-consent / fix secrets)
        ├── ApiQuotaError             exit 4  a platform quota is spent for now
        └── ApiResponseError          exit 4  an answer we cannot use (5xx, malformed body)

Messages never contain secrets: build them from our own values, never from
``str()`` of a library exception that may carry headers or tokens.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    exit_code = 3


class ExternalApiError(InvsyncError):
    exit_code = 4


class ApiAuthError(ExternalApiError):
    pass


class ApiQuotaError(ExternalApiError):
    pass


class ApiResponseError(ExternalApiError):
    pass
