"""The exception tree: every exception class of ``pipeline`` (the sandbox aside) is an
InvsyncError drawn in errors.py's docstring with its exit code, or an internal one drawn
as internal."""

import importlib
import pkgutil
import re

import pytest

import pipeline
from pipeline import errors

# Control flow inside one module; never printed by the CLI, so no exit code.
INTERNAL = {"FetchInterrupted", "BudgetSpent", "MoneyError", "_RetryableAnswer"}

DRAWN = re.compile(
    r"^[\s│├└─]*(?P<name>_?[A-Z]\w+)\s+(?:exit (?P<code>\d)|(?P<internal>internal))\b"
)


def _drawing() -> dict[str, int | None]:
    """Class name → the exit code drawn beside it (None: drawn as internal)."""
    drawn: dict[str, int | None] = {}
    for line in (errors.__doc__ or "").splitlines():
        match = DRAWN.match(line)
        if match:
            name = match["name"]
            assert name not in drawn, f"{name} is drawn twice in errors.py's docstring"
            drawn[name] = int(match["code"]) if match["code"] else None
    return drawn


def _exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in a module of ``pipeline``, outside the sandbox."""
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(pipeline.__path__, "pipeline."):
        if module_info.name.startswith("pipeline.sandbox") or module_info.name.endswith(
            ".__main__"  # runs the CLI when imported
        ):
            continue
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == module_info.name
            ):
                assert value.__name__ not in found or found[value.__name__] is value, (
                    f"two exception classes are named {value.__name__}"
                )
                found[value.__name__] = value
    return found


def test_the_walk_finds_the_classes_of_every_layer() -> None:
    # a walk that imported nothing would pass every test below
    found = _exception_classes()
    for name in ("InvsyncError", "BaseItemRejected", "SpApiThrottled", *INTERNAL):
        assert name in found, name


def test_every_exception_class_is_an_invsync_error_or_a_listed_internal_one() -> None:
    for name, cls in _exception_classes().items():
        if name in INTERNAL:
            assert not issubclass(cls, errors.InvsyncError), f"{name} is listed as internal"
        else:
            assert issubclass(cls, errors.InvsyncError), (
                f"{cls.__module__}.{name} is neither an InvsyncError nor listed as internal"
            )


def test_every_exception_class_is_drawn_with_its_exit_code() -> None:
    drawn = _drawing()
    for name, cls in _exception_classes().items():
        assert name in drawn, f"{name} is missing from the tree in errors.py's docstring"
        if name in INTERNAL:
            assert drawn[name] is None, f"{name} is internal but drawn with an exit code"
        else:
            assert issubclass(cls, errors.InvsyncError)
            assert drawn[name] == cls.exit_code, (
                f"{name} is drawn with exit {drawn[name]} but its exit_code is {cls.exit_code}"
            )


def test_the_drawing_names_no_class_that_does_not_exist() -> None:
    found = _exception_classes()
    for name in _drawing():
        assert name in found, f"errors.py's docstring draws {name}, which no module defines"


def test_the_exit_codes_the_cli_promises() -> None:
    expected = {
        errors.UsageError: 2,
        errors.RunLockedError: 2,
        errors.ConfigError: 2,
        errors.MissingCredentialError: 2,
        errors.InputError: 2,
        errors.DataError: 2,
        errors.HeldForReviewError: 3,
        errors.ExternalApiError: 4,
        errors.ApiAuthError: 4,
        errors.ApiQuotaError: 4,
        errors.ApiResponseError: 4,
        errors.RetryableApiError: 4,
    }
    for cls, code in expected.items():
        assert cls("x").exit_code == code, cls.__name__


def test_one_transient_class_with_the_cases_callers_tell_apart() -> None:
    retryable = errors.RetryableApiError
    for cls in (errors.ThrottledError, errors.TransientApiError):
        assert issubclass(cls, retryable)
    assert issubclass(errors.SpApiThrottled, errors.ThrottledError)
    assert issubclass(errors.SpApiTransientError, errors.TransientApiError)
    # the loader tells "429, nothing processed" from "no answer, maybe applied"
    assert not issubclass(errors.ThrottledError, errors.TransientApiError)
    assert not issubclass(errors.TransientApiError, errors.ThrottledError)
    # every other class that means "try again later" is one of these
    for name, cls in _exception_classes().items():
        if "Transient" in name or "Throttl" in name:
            assert issubclass(cls, retryable), name


def test_sp_api_errors_carry_their_code_and_kind() -> None:
    throttled = errors.SpApiThrottled("SP-API getItemOffersBatch answered 429.", "QuotaExceeded")
    assert (throttled.code, throttled.http_status, throttled.retryable) == (
        "QuotaExceeded",
        429,
        True,
    )
    assert throttled.exchange is None
    rejected = errors.SpApiRequestRejected("SP-API rejected it.", "InvalidInput")
    assert (rejected.code, rejected.description, rejected.retryable) == ("InvalidInput", "", False)
    assert isinstance(errors.SpApiForbidden("refused", "Unauthorized"), errors.ApiAuthError)


@pytest.mark.parametrize(
    ("old_home", "name"),
    [
        ("pipeline.clients.http", "ThrottledError"),
        ("pipeline.clients.http", "TransientApiError"),
        ("pipeline.clients.thebase", "BaseItemRejected"),
        ("pipeline.clients.thebase", "BaseLimitReached"),
        ("pipeline.clients.thebase", "BaseAuthError"),
        ("pipeline.clients.ebay", "EbayAuthError"),
        ("pipeline.clients.ebay", "EbayRequestRejected"),
        ("pipeline.clients.ebay", "EbayQuotaError"),
        ("pipeline.clients.ebay", "ReadBackUnavailable"),
        ("pipeline.clients.spapi", "SpApiCallError"),
        ("pipeline.clients.spapi", "SpApiThrottled"),
        ("pipeline.clients.spapi", "SpApiTransientError"),
        ("pipeline.clients.spapi", "SpApiRequestRejected"),
        ("pipeline.clients.spapi", "SpApiForbidden"),
        ("pipeline.clients.spapi", "MoneyError"),
    ],
)
def test_moved_classes_still_import_from_their_old_module(old_home: str, name: str) -> None:
    assert getattr(importlib.import_module(old_home), name) is getattr(errors, name)
