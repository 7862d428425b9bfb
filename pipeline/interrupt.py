"""Cooperative stopping: SIGTERM and SIGINT ask the run to stop at the next safe point.

A :class:`StopRequest` is passed down to the stages; each checks it between units of
work it can finish or abandon cleanly (an SP-API batch, a push row) and the run is
recorded as ``interrupted``. :func:`stopping_on_signals` routes the signals to one for
the duration of a block; a second SIGINT (Ctrl-C twice) stops at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class StopRequest:
    """Set by SIGINT/SIGTERM (or a caller); sleeping through it wakes at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None

    def set(self, signum: int | None = None) -> None:
        if self.signum is None:
            self.signum = signum
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    def sleep(self, seconds: float) -> bool:
        """Sleep ``seconds``; False when a stop interrupted the sleep."""
        return not self.event.wait(max(0.0, seconds))


@contextlib.contextmanager
def stopping_on_signals(stop: StopRequest) -> Iterator[StopRequest]:
    """SIGINT and SIGTERM set ``stop`` for the duration (main thread only); a second
    SIGINT interrupts at once, as Ctrl-C twice should. Nested use keeps the outer
    handlers' stop: the inner block's signals set the same request."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
