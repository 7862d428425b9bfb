"""invsync: keeps an online-arbitrage seller's BASE and eBay listings in step with Amazon.co.jp."""

__version__ = "0.1.0"
