"""The publisher's queue: encoded entries waiting for the bus, bounded in entries and in bytes, the oldest evicted
first. Each entry travels with its route (where it goes); a send takes the oldest entries that share one (a batch) or
the oldest whose routes are taken (entries sent one by one) and is then settled with how many went; an entry evicted while its send is under way is counted by
how that send ends, so that every entry is counted exactly once, as sent or as evicted.

Mirrors SendQueue in packages/client-logger/src/queue.ts. Not thread-safe: the publisher's lock guards it.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable
from typing import Generic, TypeVar

Route = TypeVar("Route")


class SendQueue(Generic[Route]):
    def __init__(self, max_entries: int, max_bytes: int) -> None:
        if max_entries < 1:
            raise ValueError(f"max_buffered must be at least 1, got {max_entries}")
        if max_bytes < 1:
            raise ValueError(f"max_buffered_bytes must be at least 1, got {max_bytes}")
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._payloads: collections.deque[bytes] = collections.deque()
        self._routes: collections.deque[Route] = collections.deque()
        self.bytes = 0
        #: How many of the oldest entries the send under way carries, and how many of those were evicted meanwhile.
        self._taken = 0
        self._taken_evicted = 0
        #: Entries handed to the socket; entries evicted to make room, unsent.
        self.sent = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._payloads)

    def head(self) -> Route | None:
        """The oldest entry's route: what the next take() sends, and where."""
        return self._routes[0] if self._routes else None

    def push(self, payload: bytes, route: Route) -> None:
        """Queues an entry, evicting the oldest until both bounds hold (an entry above max_bytes stays alone)."""
        while self._payloads and (len(self._payloads) >= self._max_entries or self.bytes + len(payload) > self._max_bytes):
            self.bytes -= len(self._payloads.popleft())
            self._routes.popleft()
            if self._taken:
                self._taken -= 1
                self._taken_evicted += 1
            else:
                self.evicted += 1
        self._payloads.append(payload)
        self._routes.append(route)
        self.bytes += len(payload)

    def take(self, max_entries: int, max_bytes: int) -> list[bytes]:
        """The oldest entries for one send, all of the oldest one's route: at most `max_entries`, and beyond the first
        at most `max_bytes` of them. They stay queued until settle(); one send at a time."""
        if self._taken or self._taken_evicted:
            raise RuntimeError("take() while a send is under way: settle() it first")
        out: list[bytes] = []
        size = 0
        for payload, route in zip(self._payloads, self._routes):
            if len(out) >= max_entries or (out and (size + len(payload) > max_bytes or route is not self._routes[0])):
                break
            out.append(payload)
            size += len(payload)
        self._taken = len(out)
        return out

    def take_each(self, max_entries: int, sendable: Callable[[Route], bool]) -> list[tuple[bytes, Route]]:
        """The oldest entries for sends of one entry each, with their routes: at most `max_entries`, up to the first
        whose route is not `sendable`. They stay queued until settle(); one send at a time."""
        if self._taken or self._taken_evicted:
            raise RuntimeError("take_each() while a send is under way: settle() it first")
        out: list[tuple[bytes, Route]] = []
        for entry in itertools.islice(zip(self._payloads, self._routes), max_entries):
            if not sendable(entry[1]):
                break
            out.append(entry)
        self._taken = len(out)
        return out

    def settle(self, sent: int) -> None:
        """Ends the send under way: the oldest `sent` of the entries taken went (those evicted meanwhile too) and leave
        the queue; the rest stay queued, and those of them evicted meanwhile are lost."""
        taken = self._taken + self._taken_evicted
        if not 0 <= sent <= taken:
            raise ValueError(f"settle({sent}) of a send that took {taken} entries")
        # Eviction takes the oldest first: the first _taken_evicted of those taken left the queue already.
        self.sent += sent
        self.evicted += max(0, self._taken_evicted - sent)
        for _ in range(max(0, sent - self._taken_evicted)):
            self.bytes -= len(self._payloads.popleft())
            self._routes.popleft()
        self._taken = 0
        self._taken_evicted = 0

    def clear(self) -> int:
        """Empties the queue, returning how many entries it held; not while a send is under way."""
        if self._taken or self._taken_evicted:
            raise RuntimeError("clear() while a send is under way: settle() it first")
        count = len(self._payloads)
        self._payloads.clear()
        self._routes.clear()
        self.bytes = 0
        return count
