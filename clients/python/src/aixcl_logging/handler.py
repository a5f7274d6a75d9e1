"""BusHandler: a logging.Handler that publishes each record on the aixcl-logging message bus."""

from __future__ import annotations

import logging
import os
import sys
import weakref
from collections.abc import Callable, Mapping

from aixcl_logging.keys import ClientKeys, client_keys_from_env
from aixcl_logging.fit import MAX_MESSAGE_BYTES
from aixcl_logging.publisher import BATCH_WINDOW, MAX_BUFFERED_BYTES, Publisher, Stats
from aixcl_logging.records import entry_from_record
from aixcl_logging.wire import WireFormat, batch_topic, encode, log_topic, sanitize_name


#: Publishers a forked child inherited: never used again, kept so that nothing closes the parent's sockets from it.
_inherited: list[Publisher] = []


def _after_fork_in_child(handler: weakref.ref[BusHandler]) -> Callable[[], None]:
    def reinit() -> None:
        live = handler()
        if live is not None and not live._closed:
            live._restart_after_fork()

    return reinit


def default_endpoint(env: Mapping[str, str] = os.environ) -> str:
    """tcp://$MESSAGE_BUS_HOST:$MESSAGE_BUS_PUB_PORT, else tcp://127.0.0.1:5555 (as the other clients)."""
    host = env.get("MESSAGE_BUS_HOST") or "127.0.0.1"
    port = env.get("MESSAGE_BUS_PUB_PORT") or "5555"
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


class BusHandler(logging.Handler):
    """Publishes every record as an AICO LogEntry on topic ``logs.<subsystem>.<module>``.

    ``emit`` never blocks: it formats the record and queues it, and a background thread owns the socket. While
    nobody on the bus subscribes to the topic (broker down or restarting, a subscriber stopping), records are
    held, up to ``max_buffered`` records and ``max_buffered_bytes`` (default 16 MiB) of them encoded; then the oldest are
    dropped and counted. ``close()`` (``logging.shutdown()`` calls
    it at exit) waits up to ``close_timeout`` seconds for held records to reach the bus and reports on stderr what it
    could not send.

    The record's message, formatted by the handler's formatter (by default ``%(message)s``: the message followed by
    any traceback from ``exc_info`` and ``stack_info``), is the log line. ``extra=`` fields go into the entry's
    ``extra`` map, except ``trace_id``, ``session_id`` and ``user_uuid``, which fill the entry's own fields;
    OpenTelemetry's logging instrumentation's ``otelTraceID`` and ``otelSpanID`` become ``trace_id`` and
    ``extra["span_id"]``. The logger's name goes into ``metadata["logger"]``.

    A process forked after the handler was made (multiprocessing's fork start method, pre-forking servers) gets a
    publisher of its own. Such a child that ends with ``os._exit`` (multiprocessing's workers do) skips
    ``logging.shutdown()``: call ``handler.flush()`` before it returns.

    While a subscriber takes batches (the log consumer does), queued records go as one message of up to 1,000
    (``aixcl.batch.<subsystem>.<module>``), each having waited at most ``batch_window`` seconds (default 0.1) for
    company: the bus' per-message costs are then paid once per batch. Single records stay on ``logs.`` for everyone
    else.

    A record that would make a message larger than ``max_message_bytes`` (default 1 MiB, the broker's default
    max_message_bytes, past which the broker drops the connection and what was on its way) has its longest texts (the
    message, ``extra`` values) cut, ending in "[truncated by aixcl-logging from N bytes]"; it is dropped only when that
    cannot make it fit. Both are counted (``stats()``) and said on stderr, at most once per 10 s.

    ``wire_format="aico"`` publishes as AICO's own producers do: topic ``logs/<subsystem>/<module>/v1`` and the entry
    inside an AicoMessage envelope. ``curve`` defaults to the key pair named by ``MESSAGE_BUS_KEYS_DIR`` and
    ``MESSAGE_BUS_CLIENT_NAME``; plaintext when they name none.
    """

    def __init__(
        self,
        subsystem: str,
        module: str,
        endpoint: str | None = None,
        *,
        level: int | str = logging.NOTSET,
        max_buffered: int = 10_000,
        close_timeout: float = 2.0,
        wire_format: WireFormat = "aixcl",
        curve: ClientKeys | None = None,
        batch_window: float = BATCH_WINDOW,
        max_buffered_bytes: int = MAX_BUFFERED_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        super().__init__(level)
        # A formatter of its own, so that logging.basicConfig() does not give it one that prefixes the level and the
        # logger's name, which travel as fields: the line is the message and any traceback.
        self.setFormatter(logging.Formatter("%(message)s"))
        if wire_format not in ("aixcl", "aico"):
            raise ValueError(f'wire_format must be "aixcl" or "aico", got {wire_format!r}')
        self.subsystem = sanitize_name(subsystem)
        self.module = sanitize_name(module)
        self.topic = log_topic(self.subsystem, self.module, wire_format)
        self.endpoint = endpoint or default_endpoint()
        self.close_timeout = close_timeout
        self._closed = False
        keys = curve if curve is not None else client_keys_from_env()
        # Batches only in our own wire format: AICO's consumers know nothing of them.
        batches = batch_topic(self.subsystem, self.module) if wire_format == "aixcl" else None
        self._new_publisher = lambda: Publisher(
            self.topic, lambda entry: encode(entry, wire_format), self.endpoint, max_buffered, keys, batches, batch_window, max_buffered_bytes, max_message_bytes
        )
        self._publisher = self._new_publisher()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child(weakref.ref(self)))

    @property
    def connected(self) -> bool:
        """True while records are being delivered: the bus has a subscriber for the topic and none is leaving."""
        return self._publisher.connected

    def stats(self) -> Stats:
        return self._publisher.stats()

    def _restart_after_fork(self) -> None:
        """A forked child has the parent's queue but not its thread, and ZeroMQ sockets do not survive a fork: it
        gets a publisher of its own, empty (the parent sends what it had queued) and counting from zero."""
        _inherited.append(self._publisher)
        self._publisher = self._new_publisher()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._publisher.put(entry_from_record(record, self.format(record), self.subsystem, self.module, self.topic))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self, timeout: float | None = None) -> bool:  # type: ignore[override]  # logging ignores the result
        """Waits until every queued record went to the socket; True if so. Returns at once while nothing can be sent."""
        return self._publisher.flush(self.close_timeout if timeout is None else timeout)

    def close(self) -> None:
        # logging.shutdown() closes every handler at exit, also those the application closed before: report once.
        first = not self._closed
        self._closed = True
        stats = self._publisher.close(self.close_timeout)
        lost = stats.dropped_closed + stats.dropped_buffer_full + stats.dropped_too_large
        if first and lost:
            sys.stderr.write(
                f"aixcl_logging: {lost} log records for {self.topic} not delivered: {stats.dropped_closed} still held at "
                f"close (no subscriber on the bus within {self.close_timeout:g} s), {stats.dropped_buffer_full} dropped "
                f"earlier because the queue was full, {stats.dropped_too_large} too large for the bus; {stats.published} delivered\n"
            )
        super().close()
