"""One publisher (one ZeroMQ socket, one I/O thread) per process for each endpoint, keys and queue limits, however
many handlers use it: a handler leases it and the last one to close it closes the publisher.

A forked child inherits the publishers but neither their threads nor usable sockets: one hook, registered once for
the process, gives the child a new publisher for each lease and lets go of the inherited ones, so nothing
accumulates however often processes fork (pre-forking servers that recycle their workers).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from aixcl_logging.keys import ClientKeys
from aixcl_logging.publisher import Publisher, Stats


@dataclass(frozen=True)
class PublisherKey:
    endpoint: str
    curve: ClientKeys | None
    max_buffered: int
    batch_window: float
    max_buffered_bytes: int
    max_message_bytes: int


class Lease:
    """The handlers' hold on one shared publisher; `publisher` is replaced in a forked child."""

    def __init__(self, key: PublisherKey) -> None:
        self.key = key
        self.publisher = Publisher(*_arguments(key))
        self.holders = 0


_lock = threading.Lock()
_leases: dict[PublisherKey, Lease] = {}


def acquire(key: PublisherKey) -> Lease:
    with _lock:
        lease = _leases.get(key)
        if lease is None:
            lease = _leases[key] = Lease(key)
        lease.holders += 1
        return lease


def release(lease: Lease, timeout: float) -> Stats | None:
    """Gives one hold back. The last one closes the publisher, waiting up to `timeout` seconds for what it holds, and
    gets its final counts; None while other handlers still use it."""
    with _lock:
        lease.holders -= 1
        if lease.holders > 0:
            return None
        del _leases[lease.key]
    return lease.publisher.close(timeout)


def lease_count() -> int:
    """How many publishers this process has (each one socket and one thread)."""
    with _lock:
        return len(_leases)


def _after_fork_in_child() -> None:
    # The parent held _lock across the fork (before=), so no other thread was changing _leases.
    for lease in _leases.values():
        inherited = lease.publisher
        lease.publisher = Publisher(*_arguments(lease.key))
        inherited.abandon()
    _lock.release()


def _arguments(key: PublisherKey) -> tuple[str, ClientKeys | None, int, float, int, int]:
    return key.endpoint, key.curve, key.max_buffered, key.batch_window, key.max_buffered_bytes, key.max_message_bytes


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_lock.acquire, after_in_parent=_lock.release, after_in_child=_after_fork_in_child)
