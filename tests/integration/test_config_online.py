"""`invsync config check --online`: one cheap call per API and account, each reported as
ok / refused / unreachable with the next step; exit 0, 2 or 4."""

from __future__ import annotations

import socket

from pipeline.redact import held


def _closed_port() -> int:
    with socket.socket() as probe:  # a port nobody listens on once this closes
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _lines(output: str, who: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(who)]


def test_online_check_calls_every_api_once_and_reports_ok(start_sandbox, cli):
    sandbox = start_sandbox(n_asins=100)
    result = cli("config", "check", "--online", env=sandbox.env())
    assert result.exit_code == 0, result.output
    assert "every API accepted it" in result.stdout
    for who, calls in (("SP-API", 1), ("BASE shop1", 1), ("BASE shop2", 1), ("eBay ebay-main", 2)):
        lines = _lines(result.stdout, who)
        assert len(lines) == calls and all(" ok " in line for line in lines), result.stdout
    assert "Out-of-Stock Control is on" in result.stdout
    counts = sandbox.call_counts()
    assert counts.get("spapi.getItemOffersBatch") == 1
    assert counts.get("base.users/me") == 2
    assert counts.get("trading.GetUserPreferences") == 1
    assert counts.get("ebay.getInventoryItems") == 1
    # every token those calls brought into the process is held for redaction
    with sandbox.state.lock:
        base, ebay = sandbox.state.apis["base"], sandbox.state.apis["ebay"]
        issued = {*base.access_tokens, *base.refresh_tokens, *ebay.access_tokens}
    assert len(issued) >= 5 and issued <= held()


def test_a_refused_and_an_unreachable_api_are_named_with_the_next_step(start_sandbox, cli):
    sandbox = start_sandbox(n_asins=100)
    env = {
        **sandbox.env(),
        "BASE_CLIENT_SECRET": "not-the-app-secret",
        "SP_API_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
    }
    result = cli("config", "check", "--online", env=env)
    assert result.exit_code == 2, result.output  # refused outranks unreachable
    (spapi,) = _lines(result.stdout, "SP-API")
    assert " unreachable " in spapi and "next: check the network" in spapi
    for shop in ("shop1", "shop2"):
        (line,) = _lines(result.stdout, f"BASE {shop}")
        assert " refused " in line
        assert f"next: connect the account again with `invsync auth base --account {shop}`" in line
    assert all(" ok " in line for line in _lines(result.stdout, "eBay ebay-main"))
    assert "not-the-app-secret" not in result.output
    assert "2 of 5 API checks were refused" in result.stderr


def test_only_unreachable_apis_exit_4(start_sandbox, cli):
    sandbox = start_sandbox(n_asins=100)
    env = {**sandbox.env(), "SP_API_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}
    result = cli("config", "check", "--online", env=env)
    assert result.exit_code == 4, result.output
    assert "1 of 5 API checks got no usable answer" in result.stderr


def test_out_of_stock_control_off_is_shown_with_how_to_turn_it_on(start_sandbox, cli):
    sandbox = start_sandbox(n_asins=100, faults="ebay_oos_control_off")
    result = cli("config", "check", "--online", env=sandbox.env())
    assert result.exit_code == 0, result.output  # the call worked; the setting needs a person
    (line,) = [x for x in _lines(result.stdout, "eBay ebay-main") if "GetUserPreferences" in x]
    assert "Out-of-Stock Control is OFF: quantity 0 would end listings" in line
    assert "next: turn it on in My eBay" in line and "out_of_stock_action" in line
