"""Deadlines for request bodies: a stalled upload is cut off so its thread is freed.

gunicorn hands a request to a worker thread once its headers have arrived; reading the body
then blocks in ``recv`` for as long as the client trickles bytes, and a socket timeout does
not help (each ``recv`` that gets one byte starts it again). One daemon thread per process
keeps the deadlines of the bodies being read and, when one passes, shuts the read side of
that connection: the blocked read returns at once, the request answers 408, and gunicorn
closes the connection instead of draining the rest.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator


class Watch:
    """One body being read: whether its deadline passed before it was done."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.expired = False
        self.done = False


class Watchdog:
    """Shuts the read side of connections whose body is past its deadline."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def watching(self, sock: socket.socket | None, seconds: float) -> Iterator[Watch | None]:
        """Bound reading from ``sock`` to ``seconds``; yields the watch (None: no socket)."""
        if sock is None:  # not behind gunicorn (test clients): nothing to cut off
            yield None
            return
        watch = Watch(sock, time.monotonic() + seconds)
        with self._cond:
            heapq.heappush(self._heap, (watch.deadline, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="body-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
        try:
            yield watch
        finally:
            with self._cond:
                watch.done = True  # left in the heap; skipped when its time comes

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, _, watch = self._heap[0]
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
                if watch.done:
                    continue
                watch.expired = True
            shut_reading(watch.sock)


def shut_reading(sock: socket.socket | None) -> None:
    """Stop reading from ``sock``: pending and later reads return end-of-file at once.

    Used for a body that is refused or too slow, so that neither this server nor gunicorn
    reads (drains) what the client still sends; the connection then closes.
    """
    if sock is None:
        return
    with contextlib.suppress(OSError):  # the client may be gone already
        sock.shutdown(socket.SHUT_RD)


WATCHDOG = Watchdog()
