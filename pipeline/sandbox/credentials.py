"""The sandbox's demo credentials: what invsync uses in sandbox mode when the
environment names none. They open nothing outside this machine's sandbox."""

from __future__ import annotations

DEMO_ENV: dict[str, str] = {
    "LWA_APP_ID": "amzn1.application-oa2-client.sandbox0demo",
    "LWA_CLIENT_SECRET": "sandbox-lwa-client-secret-0demo",
    "SP_API_REFRESH_TOKEN": "Atzr|sandbox-refresh-token-0demo",
    "BASE_CLIENT_ID": "sandbox-base-client-0demo",
    "BASE_CLIENT_SECRET": "sandbox-base-client-secret-0demo",
    "BASE_REDIRECT_URI": "http://127.0.0.1/invsync/callback",
    "BASE_SHOP1_REFRESH_TOKEN": "sandbox-base-shop1-refresh-0demo",
    "BASE_SHOP2_REFRESH_TOKEN": "sandbox-base-shop2-refresh-0demo",
    "EBAY_CLIENT_ID": "sandbox-ebay-client-0demo",
    "EBAY_CLIENT_SECRET": "sandbox-ebay-client-secret-0demo",
    "EBAY_REFRESH_TOKEN": "v^1.1#i^1#sandbox-ebay-refresh-0demo",
    # eBay's redirect_uri is the app's RuName (a name, not a URL); not secret.
    "EBAY_RU_NAME": "sandbox-invsync-0demo-RuName",
}

# Which demo account each BASE refresh token belongs to (the sandbox's shops).
BASE_SHOP_TOKENS: dict[str, str] = {
    "shop1": DEMO_ENV["BASE_SHOP1_REFRESH_TOKEN"],
    "shop2": DEMO_ENV["BASE_SHOP2_REFRESH_TOKEN"],
}
EBAY_ACCOUNT = "ebay-main"

# What the sandbox's eBay developer account registered for its RuName: where eBay's consent
# page sends the seller after "Agree" (accept) or "Disagree" (decline). Nothing listens on
# port 80 here, so by default the seller copies the address bar (the paste flow); tests
# register a 127.0.0.1 listener instead (``POST /_sandbox/consent/apps``).
EBAY_ACCEPT_URL = "http://127.0.0.1/invsync/ebay/accepted"
EBAY_DECLINE_URL = "http://127.0.0.1/invsync/ebay/declined"
