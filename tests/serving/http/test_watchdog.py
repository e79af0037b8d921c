"""serving.http.watchdog: a body read past its deadline is cut off; finished reads are not."""

from __future__ import annotations

import socket
import time

from serving.http.watchdog import Watchdog


def test_a_stalled_read_returns_when_the_deadline_passes():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        watchdog = Watchdog()
        started = time.monotonic()
        with watchdog.watching(ours, 0.3) as watch:
            data = ours.recv(10)  # nothing is sent: only the watchdog ends this
        assert data == b""
        assert watch is not None
        assert watch.expired
        assert 0.25 <= time.monotonic() - started < 3


def test_a_read_that_finishes_in_time_is_left_alone():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        watchdog = Watchdog()
        with watchdog.watching(ours, 0.2) as watch:
            theirs.sendall(b"hello")
            assert ours.recv(10) == b"hello"
        time.sleep(0.4)  # past the deadline: the finished watch is skipped
        assert watch is not None
        assert not watch.expired
        theirs.sendall(b"again")
        assert ours.recv(10) == b"again"  # the read side is still open


def test_without_a_socket_nothing_is_watched():
    with Watchdog().watching(None, 0.1) as watch:
        assert watch is None
