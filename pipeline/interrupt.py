"""Cooperative stopping: SIGTERM and SIGINT ask the run to stop at the next safe point.

A stage checks :func:`stop_requested` between units of work it can finish or abandon
cleanly (an SP-API batch, a push row) and then records the run as ``interrupted``. A
second SIGINT (Ctrl-C twice) stops at once with ``KeyboardInterrupt``.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger("invsync.interrupt")
_stop = threading.Event()
_installed = False


def stop_requested() -> bool:
    return _stop.is_set()


def request_stop() -> None:
    _stop.set()


def clear() -> None:
    _stop.clear()


def wait(seconds: float) -> bool:
    """Sleep up to ``seconds`` (a daemon's interval); True if a stop came meanwhile."""
    return _stop.wait(seconds)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if signum == signal.SIGINT and _stop.is_set():
        raise KeyboardInterrupt
    name = signal.Signals(signum).name
    log.warning("%s received: finishing the work in flight, then stopping.", name)
    _stop.set()


def install_handlers() -> None:
    """Route SIGTERM and SIGINT to the stop flag (main thread only; idempotent)."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    _installed = True
