"""An entry within the bus' message size: what the broker would refuse is cut, or dropped, here. Pure functions.

Mirrors packages/client-logger/src/fit.ts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from aixcl_logging.wire import Entry

#: The broker's default max_message_bytes (config/message_bus.yaml): ZeroMQ refuses a larger message while it
#: arrives and drops the publisher's connection, and with it whatever else was on its way.
MAX_MESSAGE_BYTES = 1024 * 1024


def truncation_marker(original_bytes: int) -> str:
    """Ends a text cut to fit: findable in Loki (``|= "truncated by aixcl-logging"``), and says how long it was."""
    return f" [truncated by aixcl-logging from {original_bytes} bytes]"


def fit_entry(entry: Entry, encode: Callable[[Entry], bytes], max_payload_bytes: int) -> tuple[bytes, bool] | None:
    """The entry encoded within `max_payload_bytes`, and whether it had to be cut: as it is when it fits; otherwise its
    longest texts (the message and the values of `extra`) are cut, longest first, each ending in truncation_marker,
    until it fits. None when even that cannot make it fit: the rest of the entry alone is too large."""
    payload = encode(entry)
    if len(payload) <= max_payload_bytes:
        return payload, False
    cut = dataclasses.replace(entry, extra=dict(entry.extra))
    texts: list[tuple[str | None, bytes]] = [(None, entry.message.encode()), *((key, value.encode()) for key, value in entry.extra.items())]
    texts.sort(key=lambda text: len(text[1]), reverse=True)
    for key, text in texts:
        excess = len(payload) - max_payload_bytes
        if excess <= 0:
            break
        marker = truncation_marker(len(text))
        marker_bytes = len(marker.encode())
        if len(text) <= marker_bytes:
            break  # the rest are no longer than their marker: cutting them would not make the entry smaller
        # The field's length prefix (and the envelope's) can only shrink with it: cutting `excess` bytes is enough.
        # errors="ignore" leaves out a character the cut split.
        shortened = text[: max(0, len(text) - excess - marker_bytes)].decode(errors="ignore") + marker
        if key is None:
            cut.message = shortened
        else:
            cut.extra[key] = shortened
        payload = encode(cut)
    return (payload, True) if len(payload) <= max_payload_bytes else None
