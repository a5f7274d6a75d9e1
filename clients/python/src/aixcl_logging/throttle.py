"""One stderr line per interval for a problem that can repeat many times a second, so stderr stays readable: the
first occurrence at once, then what happened since the last line. As LogThrottle in
packages/client-logger/src/throttle.ts."""

from __future__ import annotations

import collections

#: How often a repeating problem is said (the TypeScript logger's LOG_THROTTLE_MS).
THROTTLE_INTERVAL = 10.0


class Throttle:
    def __init__(self, interval: float = THROTTLE_INTERVAL) -> None:
        self._interval = interval
        self._last_line = float("-inf")
        self._sums: collections.Counter[str] = collections.Counter()

    def note(self, now: float, **amounts: int) -> dict[str, int] | None:
        """Records one occurrence and its amounts. None while the interval since the last line runs; otherwise what
        happened since that line ("times" and each amount's sum), this occurrence included, and the next interval
        starts."""
        self._sums["times"] += 1
        self._sums.update(amounts)
        if now - self._last_line < self._interval:
            return None
        summary = dict(self._sums)
        self._last_line = now
        self._sums = collections.Counter()
        return summary
