"""A WSGI app served on 127.0.0.1 from a daemon thread: how invsync runs a server of its own
(the sandbox marketplace, the review workbench).

Stage: none (shared). Reads and writes nothing. werkzeug's threaded server, with TCP_NODELAY
on every accepted socket (without it a response whose headers and body leave in separate
packets waits ~40 ms for Nagle) and no access line per request (the sandbox's ledger records
every call; the workbench's URLs hold its token). A short poll interval keeps ``stop`` fast.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

HOST = "127.0.0.1"
logger = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)


class LoopbackServer:
    """``app`` listening on 127.0.0.1:``port`` (0: a free one) from the moment it is made,
    until :meth:`stop`; :attr:`port` is the port it got."""

    def __init__(self, app: Any, port: int, *, name: str, poll_interval: float = 0.05) -> None:
        self._server = make_server(HOST, port, app, threaded=True, request_handler=_QuietHandler)
        self.port: int = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": poll_interval},
            name=f"{name}-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
