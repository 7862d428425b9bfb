"""The exception tree: every exception class of ``pipeline`` (the sandbox aside) is an
InvsyncError drawn in errors.py's docstring with its exit code, or an internal one drawn
as internal."""

import http.server
import importlib
import pkgutil
import re
import socket
import threading
from collections.abc import Iterator

import pytest
import requests

import pipeline
from pipeline import errors
from pipeline.clients.http import AccessToken, RetryPolicy, send

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
        errors.WarehouseBusyError: 2,
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


# --- the HTTP translation: our sentence, our values, no library text -----------------

SECRET = "tok-0123456789-secret"


class _Busy(http.server.BaseHTTPRequestHandler):
    """Answers every request with the status in the path (``/429``, ``/503``)."""

    def do_GET(self) -> None:
        status = int(self.path.split("?")[0].strip("/"))
        self.send_response(status)
        self.send_header("Retry-After", "0.002")  # seconds
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def busy_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _send(url: str) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {SECRET}"
    policy = RetryPolicy(max_attempts=2, time_scale=1000.0)  # waits of 1 ms at most
    send(
        session,
        "GET",
        f"{url}?access_token={SECRET}",
        platform="BASE shop1",
        operation="items",
        policy=policy,
    )


def _assert_ours(exc: errors.ExternalApiError) -> None:
    assert SECRET not in str(exc) and "127.0.0.1" not in str(exc)
    assert exc.__cause__ is None and exc.__suppress_context__  # no library traceback shown


def test_no_answer_is_a_transient_error_built_from_our_values() -> None:
    with pytest.raises(errors.TransientApiError) as caught:
        _send(f"http://127.0.0.1:{_closed_port()}/items")
    assert caught.value.message == (
        "BASE shop1 did not answer items after 2 attempts (connection failed or timed out); "
        "check the network or the endpoint and run the command again."
    )
    assert (caught.value.operation, caught.value.http_status) == ("items", None)
    _assert_ours(caught.value)


def test_a_5xx_is_transient_and_a_429_is_throttled_with_its_retry_after(busy_server) -> None:
    with pytest.raises(errors.TransientApiError) as unavailable:
        _send(f"{busy_server}/503")
    assert unavailable.value.http_status == 503
    _assert_ours(unavailable.value)

    with pytest.raises(errors.ThrottledError) as throttled:
        _send(f"{busy_server}/429")
    assert isinstance(throttled.value, errors.RetryableApiError)
    assert not isinstance(throttled.value, errors.TransientApiError)
    assert (throttled.value.http_status, throttled.value.retry_after) == (429, 0.002)
    _assert_ours(throttled.value)


def test_an_access_token_never_shows_in_a_repr() -> None:
    token = AccessToken(SECRET, 10.0)
    assert SECRET not in repr(token) and token.usable(9.9) and not token.usable(10.0)
