"""BusHandler: a logging.Handler that publishes each record on the aixcl-logging message bus."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping

from aixcl_logging import registry
from aixcl_logging.fit import MAX_MESSAGE_BYTES
from aixcl_logging.keys import ClientKeys, client_keys_from_env, load_client_key_files, load_client_keys
from aixcl_logging.publisher import BATCH_WINDOW, MAX_BUFFERED_BYTES, Route, Stats
from aixcl_logging.records import capture
from aixcl_logging.wire import WireFormat, batch_topic, encode_aico_message, encode_log_entry, log_topic, sanitize_name

#: Logger names whose route a handler remembers; past it the memory starts over (names made per request, say).
ROUTE_CACHE_SIZE = 1024


def default_endpoint(env: Mapping[str, str] = os.environ) -> str:
    """tcp://$MESSAGE_BUS_HOST:$MESSAGE_BUS_PUB_PORT, else tcp://127.0.0.1:5555 (as the other clients)."""
    host = env.get("MESSAGE_BUS_HOST") or "127.0.0.1"
    port = env.get("MESSAGE_BUS_PUB_PORT") or "5555"
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


def resolve_keys(
    curve: ClientKeys | None,
    keys_dir: str | None,
    client_name: str | None,
    broker_key_file: str | None,
    public_key_file: str | None,
    secret_key_file: str | None,
) -> ClientKeys | None:
    """The CURVE keys from exactly one of: `curve`, a keys folder and a client name, three key files; else from the
    environment (client_keys_from_env)."""
    files = (broker_key_file, public_key_file, secret_key_file)
    given = [name for name, used in (("curve", curve is not None), ("keys_dir", keys_dir is not None), ("key files", any(f is not None for f in files))) if used]
    if len(given) > 1:
        raise ValueError(f"give the CURVE keys one way, not {' and '.join(given)}")
    if (keys_dir is None) != (client_name is None):
        raise ValueError("keys_dir and client_name go together: the folder of `./aixcl keys` and whose key pair in it to use")
    if curve is not None:
        return curve
    if keys_dir is not None and client_name is not None:
        return load_client_keys(keys_dir, client_name)
    if any(f is not None for f in files):
        if broker_key_file is None or public_key_file is None or secret_key_file is None:
            raise ValueError("broker_key_file, public_key_file and secret_key_file go together: give all three")
        return load_client_key_files(broker_key_file, public_key_file, secret_key_file)
    return client_keys_from_env()


class BusHandler(logging.Handler):
    """Publishes every record as an AICO LogEntry on topic ``logs.<subsystem>.<module>``.

    ``module`` names where records come from; without it, each record's module is its logger's name, lower-cased,
    with every run of characters outside ``[a-z0-9_-]`` (the dots too) turned into ``_`` and cut at 64 characters:
    logger ``shop.Billing`` gives module ``shop_billing``, the root logger ``root``, ``__main__`` stays. So one
    handler on the root logger (``logging.basicConfig(handlers=[BusHandler("billing")])``, Django's ``LOGGING``,
    ``dictConfig``) covers a whole application.

    Handlers of one process with the same endpoint, keys and queue limits (``max_buffered``, ``max_buffered_bytes``,
    ``max_message_bytes``, ``batch_window``) share one ZeroMQ socket and one I/O thread, and with them the queue,
    ``connected`` and ``stats()``; the last of them to close closes it.

    ``emit`` never blocks: it formats the record and hands it over; a background thread encodes it and owns the socket. While
    nobody on the bus subscribes to the topic (broker down or restarting, a subscriber stopping), records are
    held, up to ``max_buffered`` records and ``max_buffered_bytes`` (default 16 MiB) of them encoded; then the oldest are
    dropped and counted. ``close()`` (``logging.shutdown()`` calls
    it at exit) waits up to ``close_timeout`` seconds for held records to reach the bus and reports on stderr what it
    could not send. ``flush()`` and ``close()`` together wait at most ``close_timeout`` for the same records, as
    ``logging.shutdown()`` calls them; other threads' records are queued meanwhile, not blocked (the handler's lock
    is not taken around ``emit``, which is thread-safe on its own).

    The handler's formatter makes the log line, whole: by default ``%(message)s``, the message followed by any
    traceback from ``exc_info`` and ``stack_info``. A formatter you set (``setFormatter``, ``formatter:`` in
    ``dictConfig``) is honoured as it is: ``"%(levelname)s %(message)s"`` puts the level into the line too, although
    it travels as a field (label ``level``) anyway. ``extra=`` fields go into the entry's
    ``extra`` map, except ``trace_id``, ``session_id`` and ``user_uuid``, which fill the entry's own fields;
    OpenTelemetry's logging instrumentation's ``otelTraceID`` and ``otelSpanID`` become ``trace_id`` and
    ``extra["span_id"]``. The logger's name goes into ``metadata["logger"]``.

    A process forked after the handler was made (multiprocessing's fork start method, pre-forking servers) gets a
    publisher of its own (hooks registered once per process, whatever the number of handlers). Such a child that ends
    with ``os._exit`` (multiprocessing's workers do) skips ``logging.shutdown()``: call ``handler.flush()`` before it
    returns.

    While a subscriber takes batches (the log consumer does), queued records go as one message of up to 1,000
    (``aixcl.batch.<subsystem>.<module>``), each having waited at most ``batch_window`` seconds (default 0.1) for
    company: the bus' per-message costs are then paid once per batch. Single records stay on ``logs.`` for everyone
    else.

    A record that would make a message larger than ``max_message_bytes`` (default 1 MiB, the broker's default
    max_message_bytes, past which the broker drops the connection and what was on its way) has its longest texts (the
    message, ``extra`` values) cut, ending in "[truncated by aixcl-logging from N bytes]"; it is dropped only when that
    cannot make it fit. Both are counted (``stats()``) and said on stderr, at most once per 10 s.

    ``wire_format="aico"`` publishes as AICO's own producers do: topic ``logs/<subsystem>/<module>/v1`` and the entry
    inside an AicoMessage envelope.

    CURVE keys, one way of these: ``curve`` (a ClientKeys); ``keys_dir`` and ``client_name`` (the folder of
    ``./aixcl keys`` and whose key pair); ``broker_key_file``, ``public_key_file`` and ``secret_key_file`` (paths).
    Strings all but the first, so ``dictConfig`` can give them. Without any, the key pair named by
    ``MESSAGE_BUS_KEYS_DIR`` and ``MESSAGE_BUS_CLIENT_NAME``; plaintext when they name none.
    """

    def __init__(
        self,
        subsystem: str,
        module: str | None = None,
        endpoint: str | None = None,
        *,
        level: int | str = logging.NOTSET,
        max_buffered: int = 10_000,
        close_timeout: float = 2.0,
        wire_format: WireFormat = "aixcl",
        curve: ClientKeys | None = None,
        keys_dir: str | None = None,
        client_name: str | None = None,
        broker_key_file: str | None = None,
        public_key_file: str | None = None,
        secret_key_file: str | None = None,
        batch_window: float = BATCH_WINDOW,
        max_buffered_bytes: int = MAX_BUFFERED_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        super().__init__(level)
        # A formatter of its own, so that logging.basicConfig() does not give it one that prefixes the level and the
        # logger's name, which travel as fields: the line is the message and any traceback.
        self._plain = logging.Formatter("%(message)s")
        self.setFormatter(self._plain)
        if wire_format not in ("aixcl", "aico"):
            raise ValueError(f'wire_format must be "aixcl" or "aico", got {wire_format!r}')
        self.subsystem = sanitize_name(subsystem)
        self.module = sanitize_name(module) if module is not None else None
        self.endpoint = endpoint or default_endpoint()
        self.close_timeout = close_timeout
        self._wire_format: WireFormat = wire_format
        self._closed = False
        #: Seconds flush() and close() waited since the last record: together they wait at most close_timeout.
        self._waited = 0.0
        keys = resolve_keys(curve, keys_dir, client_name, broker_key_file, public_key_file, secret_key_file)
        self._lease = registry.acquire(registry.PublisherKey(self.endpoint, keys, max_buffered, batch_window, max_buffered_bytes, max_message_bytes))
        #: Routes by module or logger name, of the publisher they were made by (a forked child has a new one).
        self._routes: dict[str, tuple[str, Route]] = {}
        self._routes_of = self._lease.publisher

    @property
    def connected(self) -> bool:
        """True while records are being delivered: the bus has a subscriber for the handler's topics (for every
        module of the subsystem when the module comes from the logger) and none is leaving."""
        # This handler's topic, or every module of the subsystem (the topics' common prefix, module "").
        return self._route(self.module if self.module is not None else "")[1].sending

    def stats(self) -> Stats:
        """The counts of the publisher this handler shares with the process' other handlers of its endpoint."""
        return self._lease.publisher.stats()

    def _route(self, module: str) -> tuple[str, Route]:
        """The module (sanitized) and route of a module name or logger name."""
        publisher = self._lease.publisher
        if publisher is not self._routes_of:
            self._routes.clear()
            self._routes_of = publisher
        found = self._routes.get(module)
        if found is None:
            if len(self._routes) >= ROUTE_CACHE_SIZE:
                self._routes.clear()
            name = sanitize_name(module) if module else ""
            topic = log_topic(self.subsystem, name, self._wire_format)
            if self._wire_format == "aico":
                route = publisher.route(topic, None, encode_aico_message)
            else:
                # Batches only in our own wire format: AICO's consumers know nothing of them.
                route = publisher.route(topic, batch_topic(self.subsystem, name), encode_log_entry)
            found = self._routes[module] = (name, route)
        return found

    if sys.version_info >= (3, 12):

        def handle(self, record: logging.LogRecord) -> bool | logging.LogRecord:
            return self._handle(record)

    else:

        def handle(self, record: logging.LogRecord) -> bool:
            return bool(self._handle(record))

    def _handle(self, record: logging.LogRecord) -> bool | logging.LogRecord:
        """Handler.handle without the handler's lock: logging.shutdown() holds it while flush() and close() wait for
        the bus, and emit() needs none (the publisher has its own)."""
        result = self.filter(record)
        if isinstance(result, logging.LogRecord):
            record = result
        if result:
            self.emit(record)
        return result

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self._closed:
                self._lease.publisher.discard()
                return
            self._waited = 0.0
            module, route = self._route(self.module if self.module is not None else record.name)
            # The formatter runs here, seeing the record as at call time; building and encoding the entry is the
            # publisher's thread's (publisher.py).
            # Our own formatter on a record without a traceback or stack gives the message alone: getMessage() is what
            # format() would return, without its costs (0.9 against 0.24 µs).
            plain = self.formatter is self._plain and not record.exc_info and not record.exc_text and not record.stack_info
            self._routes_of.put_record(capture(record, record.getMessage() if plain else self.format(record)), self.subsystem, module, route)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Waits until every queued record went to the socket, at most close_timeout (less what an earlier flush()
        waited for the same records). Returns at once while nothing can be sent: waiting for a subscriber is close()'s
        job."""
        started = time.monotonic()
        self._lease.publisher.flush(max(0.0, self.close_timeout - self._waited))
        self._waited += time.monotonic() - started

    def close(self) -> None:
        # logging.shutdown() closes every handler at exit, also those the application closed before: once.
        if not self._closed:
            self._closed = True
            budget = max(0.0, self.close_timeout - self._waited)
            stats = registry.release(self._lease, budget)
            lost = stats.dropped_closed + stats.dropped_buffer_full + stats.dropped_too_large + stats.dropped_unencodable if stats is not None else 0
            if stats is not None and lost:
                sys.stderr.write(
                    f"aixcl_logging: {lost} log records for {self.endpoint} not delivered: {stats.dropped_closed} still held at "
                    f"close (no subscriber on the bus within {budget:g} s), {stats.dropped_buffer_full} dropped "
                    f"earlier because the queue was full, {stats.dropped_too_large} too large for the bus, {stats.dropped_unencodable} not "
                    f"encodable; {stats.published} delivered\n"
                )
        super().close()
