"""``invsync auth base|ebay --account ID``: connect a seller account (OAuth consent).

Stage: auth. A thin wrapper over :mod:`pipeline.auth`: prints the consent URL, takes the
answer (a 127.0.0.1 listener when the redirect points there, else the pasted address or
``--redirect-url``), exchanges the code and says where the refresh token went — never the
token itself.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from pipeline.cli.options import bounded
from pipeline.errors import UsageError

auth_app = typer.Typer(
    help="Connect a BASE shop or an eBay account by OAuth consent; the refresh token goes to "
    "the private token store, never to .env or the screen.",
    no_args_is_help=True,
)

_ACCOUNT = typer.Option("--account", help="The account id declared in invsync.toml.")
_REDIRECT = typer.Option(
    "--redirect-url",
    help="The address the browser reached after allowing: finishes the consent this account "
    "last started, without a prompt.",
)
_TIMEOUT = typer.Option(
    "--timeout",
    help="Seconds to wait for the browser when invsync listens on 127.0.0.1.",
    callback=bounded("--timeout", 0.1, 86400, example="--timeout 300"),
)


def _say(line: str) -> None:
    from pipeline.cli import console

    console.print(line, markup=False, highlight=False, soft_wrap=True)
    sys.stdout.flush()


def _pasted(command: str) -> str:
    """One line from stdin: the address the browser reached."""
    _say("Paste the whole address the browser reached after you allowed, then press Enter:")
    try:
        line = sys.stdin.readline()
    except OSError:  # no readable stdin (a scheduler, a closed pipe): nothing was pasted
        line = ""
    if not line.strip():
        raise UsageError(
            "No redirect URL was given; finish this consent with "
            f"`{command} --redirect-url URL`, or run `{command}` again."
        )
    return line


def _connect(ctx: typer.Context, platform: str, account: str, redirect_url: str | None,
             timeout: float) -> None:  # fmt: skip
    """Start (or finish) the account's consent, exchange the code, store the token."""
    from pipeline import auth
    from pipeline.cli import state
    from pipeline.tokens import store_path

    ws = state(ctx).workspace()
    auth.account_for(ws, platform, account)
    with auth.platform_workspace(ws, platform) as (api_ws, sandbox):
        if sandbox is not None:
            _say(
                f"Sandbox mode: the consent page is the in-process sandbox's at {sandbox.url}; "
                "it answers while this command waits."
            )
        if redirect_url:
            consent = auth.pending(api_ws, platform, account)
            answer = redirect_url
        else:
            consent = auth.begin(api_ws, platform, account)
            answer = _answer(consent, timeout)
        auth.exchange(api_ws, consent, auth.code_from(answer, consent))
    who = f"{auth.NAMES[platform]} {account}"
    _say(
        f"Connected {who}: its refresh token is in {store_path(ws.data_dir)} (mode 0600), and "
        "the next sync uses it."
    )


def _answer(consent: Any, timeout: float) -> str:
    """The address the browser came back to: caught on 127.0.0.1, or pasted."""
    from pipeline import auth

    intro = "Open this address in a browser, log in and allow invsync:"
    if consent.listen_port() is None:
        _say(intro)
        _say(consent.url)
        _say(
            "The browser then goes to the app's redirect address (it may show an error page; "
            "that is fine: its address holds the code)."
        )
        return _pasted(consent.command())
    with auth.Catcher(consent) as catcher:
        _say(intro)
        _say(consent.url)
        _say(f"Waiting up to {timeout:g} s for the browser to come back to {consent.callback}.")
        return catcher.wait(timeout)


@auth_app.command("base")
def auth_base(
    ctx: typer.Context,
    account: Annotated[str, _ACCOUNT],
    redirect_url: Annotated[str | None, _REDIRECT] = None,
    timeout: Annotated[float, _TIMEOUT] = 300.0,
) -> None:
    """Connect a BASE shop: consent in the browser, then the refresh token is stored."""
    _connect(ctx, "base", account, redirect_url, timeout)


@auth_app.command("ebay")
def auth_ebay(
    ctx: typer.Context,
    account: Annotated[str, _ACCOUNT],
    redirect_url: Annotated[str | None, _REDIRECT] = None,
    timeout: Annotated[float, _TIMEOUT] = 300.0,
) -> None:
    """Connect an eBay account: consent in the browser, then the refresh token is stored."""
    _connect(ctx, "ebay", account, redirect_url, timeout)
