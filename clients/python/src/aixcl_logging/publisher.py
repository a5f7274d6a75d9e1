"""The thread that owns the ZeroMQ socket: it sends queued entries while the bus wants them and holds them while not.

Mirrors the TypeScript logger (packages/client-logger/src/logger.ts):
- One publisher per process serves every handler with the same endpoint, keys and limits (registry.py): each entry
  carries its route (topic, batch topic), so one socket carries every module's topic.
- The socket is an XPUB, so the subscriptions that reach the broker reach us too. Entries are sent in order while some
  subscription covers the oldest one's topic and nobody holds HOLD_TOPIC; otherwise they wait in a bounded queue (the
  oldest dropped first, counted) instead of being dropped unseen by ZeroMQ.
- XPUB_NODROP makes a full pipe answer EAGAIN instead of discarding; the entry stays queued and is retried after
  a short wait. IMMEDIATE keeps nothing in a pipe to a broker that is not there.
- Subscription changes that arrive together are applied together: a broker going away drops all of them at once.
- Encoding an entry is the publisher's: an application thread's put_record() only appends what the record was at call
  time (records.capture) to an intake, and our thread (or whoever asks for the counts first: stats(), flush(),
  close()) builds, encodes and queues it, so that the queue is bounded in bytes as well as entries and nothing is
  queued that the broker would refuse (max_message_bytes): an entry too large is cut, or dropped, there and counted.
  The intake and the queue together hold at most max_buffered records and about max_buffered_bytes (the intake's
  records by their texts' lengths): past that the application thread encodes the oldest waiting records itself.
- Our thread needs the GIL for encoding and sending, which takes it from the application's threads: while they log
  and less than half of those limits is held, it works in rounds of ROUND_ENTRIES and leaves the GIL to them for
  YIELD_MS between rounds, so that a burst costs the application little more than the hand-over and is encoded and sent
  once it pauses. Past half the limits it works without pausing, so that a lasting flood is sent rather than dropped.
- Single entries go ROUND_ENTRIES at a time between two looks at the queue, not one send per lock and look.
- While a subscriber takes the batch topic (aixcl.batch.<subsystem>.<module>; the log consumer does), what is
  queued for one topic goes as one LogBatch message of up to BATCH_MAX_ENTRIES entries and BATCH_MAX_BYTES bytes instead of one
  message each: the bus' per-message costs are then paid once per batch.
"""

from __future__ import annotations

import collections
import itertools
import logging
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import zmq

from aixcl_logging.fit import MAX_MESSAGE_BYTES, fit_entry
from aixcl_logging.keys import ClientKeys
from aixcl_logging.records import Captured, entry_from_captured
from aixcl_logging.sendqueue import SendQueue
from aixcl_logging.throttle import Throttle
from aixcl_logging.wire import HOLD_TOPIC, Entry, encode_log_batch, varint_size

#: How long the thread waits before retrying a send the socket refused at its high-water mark.
FULL_QUEUE_RETRY_MS = 2

#: A batch holds at most this many entries and bytes of them (as the TypeScript logger's): the per-message costs of
#: the bus vanish per entry, and it stays far below the broker's and the consumer's max_message_bytes (1 MiB).
BATCH_MAX_ENTRIES = 1000
BATCH_MAX_BYTES = 32 * 1024
#: Default of how long an entry may wait for others to go with it in one batch (the TypeScript logger's 100 ms).
BATCH_WINDOW = 0.1
#: Default of max_buffered_bytes: the 10,000 entries of max_buffered at up to 1.6 KiB each (the TypeScript logger's).
MAX_BUFFERED_BYTES = 16 * 1024 * 1024

#: The most records our thread encodes, or single entries it sends, in one round: between rounds it looks whether to
#: leave the GIL to the application's threads, and one that reaches the limits encodes this many itself.
ROUND_ENTRIES = 64
#: How long our thread leaves the GIL to application threads that are logging, between rounds: once it asks for it back,
#: a thread running Python keeps it for up to sys.getswitchinterval() (5 ms) more.
YIELD_MS = 1

_instances = itertools.count()


def _wanted(route: Route) -> bool:
    return route.wanted


class Route:
    """Where entries go: their topic and, in our wire format, their batch topic (None in AICO's); and whether the bus
    takes them now, which the publisher's thread updates as subscriptions come and go."""

    __slots__ = ("__weakref__", "batch_topic", "batching", "encode", "max_payload_bytes", "topic", "topic_text", "wanted")

    def __init__(self, topic: str, batch_topic: str | None, encode: Callable[[Entry], bytes], max_message_bytes: int) -> None:
        self.topic = topic.encode()
        self.topic_text = topic
        self.batch_topic = batch_topic.encode() if batch_topic is not None else None
        self.encode = encode
        # The largest message an entry can travel in: alone in a batch (whose topic is longer than the entry's own),
        # its payload behind a tag and a length; without batches, as it is.
        framing = len(self.batch_topic) + 1 + varint_size(max_message_bytes) if self.batch_topic is not None else len(self.topic)
        self.max_payload_bytes = max_message_bytes - framing
        #: Someone takes our single entries (the topic) / our batches (the batch topic).
        self.wanted = False
        self.batching = False

    @property
    def sending(self) -> bool:
        return self.wanted or self.batching

    def follow(self, prefixes: set[bytes]) -> None:
        hold = HOLD_TOPIC in prefixes
        self.wanted = not hold and any(self.topic.startswith(p) for p in prefixes)
        batch_topic = self.batch_topic
        self.batching = not hold and batch_topic is not None and any(batch_topic.startswith(p) for p in prefixes)


@dataclass(frozen=True)
class Stats:
    """Every entry put is counted once: published, buffered or dropped. published: handed to the socket. buffered:
    waiting for a subscriber. dropped_buffer_full: the oldest, dropped while the queue was full (max_buffered or
    max_buffered_bytes). dropped_closed: emitted after close, or still held when close's deadline passed.
    dropped_too_large: over max_message_bytes even with its texts cut. truncated: entries whose longest texts were
    cut to fit max_message_bytes (counted as published, buffered or dropped too). dropped_unencodable: records the
    background thread could not turn into a LogEntry (said on stderr)."""

    published: int
    buffered: int
    dropped_buffer_full: int
    dropped_closed: int
    dropped_too_large: int
    truncated: int
    # Last, with a default: code that builds a Stats by position keeps working.
    dropped_unencodable: int = 0


class Publisher:
    def __init__(
        self,
        endpoint: str,
        curve: ClientKeys | None = None,
        max_buffered: int = 10_000,
        batch_window: float = BATCH_WINDOW,
        max_buffered_bytes: int = MAX_BUFFERED_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        if max_message_bytes < 1024:
            raise ValueError(f"max_message_bytes must be at least 1024 (the bus' max_message_bytes), got {max_message_bytes}")
        if max_buffered_bytes < max_message_bytes:
            raise ValueError(
                f"max_buffered_bytes ({max_buffered_bytes}) must be at least max_message_bytes ({max_message_bytes}), or the largest entries could never be held"
            )
        self._queue: SendQueue[Route] = SendQueue(max_buffered, max_buffered_bytes)
        self._max_buffered = max_buffered
        self._max_buffered_bytes = max_buffered_bytes
        self._batch_window = batch_window
        #: When the oldest queued entry was queued (time.monotonic()): a batch waits for company from then on.
        self._first_queued_at = 0.0
        self._endpoint = endpoint
        self._curve = curve
        self._max_message_bytes = max_message_bytes
        self._oversized = Throttle()
        # Guards the queue, the counters, the routes and the flags below, between application threads and ours.
        self._lock = threading.Lock()
        self._dropped_closed = 0
        self._dropped_too_large = 0
        self._truncated = 0
        self._dropped_unencodable = 0
        self._closing = False
        self._stopping = False
        # True while our thread sleeps with nothing queued: put() of an entry the bus wants then wakes it.
        self._idle = False
        #: The routes in use: a handler remembers up to ROUTE_CACHE_SIZE (handler.py) and each held record its own;
        #: the others go, so that module names made per request do not accumulate.
        self._routes: weakref.WeakValueDictionary[tuple[str, str | None], Route] = weakref.WeakValueDictionary()
        #: Records put_record() handed over, encoded and queued by _convert(), and the sum of their size estimates;
        #: guarded by the lock, as is the count of records handed over (our thread's sign that the application logs).
        self._intake: collections.deque[tuple[Captured, str, str, Route]] = collections.deque()
        self._intake_bytes = 0
        self._handed_over = 0
        # One _convert() at a time, so that entries reach the queue in the order they were logged.
        self._converting = threading.Lock()
        #: The subscriptions the bus has passed us (our thread's, read by route() under the lock).
        self._prefixes: set[bytes] = set()
        self._drained = threading.Condition(self._lock)
        self._linger_ms = 0

        self._context = zmq.Context(io_threads=1)
        # Wake-ups travel over an inproc pair: it works with zmq.Poller on every platform, unlike a pipe.
        address = f"inproc://aixcl-logging-wake-{next(_instances)}"
        self._wake_rx = self._context.socket(zmq.PAIR)
        self._wake_rx.bind(address)
        self._wake_tx = self._context.socket(zmq.PAIR)
        self._wake_tx.setsockopt(zmq.SNDHWM, 1)
        self._wake_tx.connect(address)
        self._thread = threading.Thread(target=self._run, name=f"aixcl-logging {endpoint}", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return self._endpoint

    def route(self, topic: str, batch_topic: str | None, encode: Callable[[Entry], bytes]) -> Route:
        """The route of a topic, made once: our thread keeps every route's flags in step with the subscriptions."""
        with self._lock:
            route = self._routes.get((topic, batch_topic))
            if route is None:
                route = self._routes[(topic, batch_topic)] = Route(topic, batch_topic, encode, self._max_message_bytes)
                route.follow(self._prefixes)
            return route

    def route_count(self) -> int:
        """How many routes the publisher keeps."""
        with self._lock:
            return len(self._routes)

    def stats(self) -> Stats:
        self._convert()
        with self._lock:
            return self._stats()

    def _stats(self) -> Stats:
        queue = self._queue
        return Stats(queue.sent, len(queue), queue.evicted, self._dropped_closed, self._dropped_too_large, self._truncated, self._dropped_unencodable)

    def put_record(self, captured: Captured, subsystem: str, module: str, route: Route) -> None:
        """Hands a record over to be encoded and queued; never blocks on the bus. Called from application threads."""
        with self._lock:
            if self._closing:
                self._dropped_closed += 1
                return
            self._intake.append((captured, subsystem, module, route))
            self._intake_bytes += captured[-1]
            self._handed_over += 1
            full = self._held(1)
            if not full and self._idle and route.sending:
                self._idle = False
                self._wake()
        if full:
            self._convert(ROUND_ENTRIES)

    def _held(self, fraction: int) -> bool:
        """The intake and the queue hold 1/fraction of max_buffered records or of max_buffered_bytes, or more. Called
        with the lock held."""
        queue = self._queue
        return (len(self._intake) + len(queue)) * fraction >= self._max_buffered or (self._intake_bytes + queue.bytes) * fraction >= self._max_buffered_bytes

    def _convert(self, most: int | None = None) -> None:
        """Builds, encodes and queues what put_record() handed over, in order: all of it, or the `most` oldest. Any
        thread."""
        with self._converting:
            with self._lock:
                if not self._intake:
                    return
                if most is None or most >= len(self._intake):
                    intake, self._intake = list(self._intake), collections.deque()
                    self._intake_bytes = 0
                else:
                    intake = [self._intake.popleft() for _ in range(most)]
                    self._intake_bytes -= sum([item[0][-1] for item in intake])
            fitted: list[tuple[str, tuple[bytes, bool] | None, Route]] = []
            for captured, subsystem, module, route in intake:
                topic = route.topic_text
                try:
                    fitted.append((topic, fit_entry(entry_from_captured(captured, subsystem, module, topic), route.encode, route.max_payload_bytes), route))
                except Exception as error:
                    with self._lock:
                        self._dropped_unencodable += 1
                    # What Handler.handleError says when emit() fails: here after emit() returned, on whichever thread.
                    if logging.raiseExceptions:
                        sys.stderr.write(f"aixcl_logging: a log record for {topic} could not be encoded, not sent: {error!r}\n")
            with self._lock:
                for topic, fitted_entry, route in fitted:
                    self._queue_fitted(topic, fitted_entry, route)

    def _queue_fitted(self, topic: str, fitted: tuple[bytes, bool] | None, route: Route) -> None:
        """Queues an encoded entry, or counts it as too large. Called with the lock held."""
        if fitted is None:
            self._dropped_too_large += 1
            self._report_oversized(topic, truncated=False)
            return
        payload, truncated = fitted
        if truncated:
            self._truncated += 1
            self._report_oversized(topic, truncated=True)
        if not self._queue:
            self._first_queued_at = time.monotonic()
        self._queue.push(payload, route)
        if self._idle and route.sending:
            self._idle = False
            self._wake()

    def discard(self) -> None:
        """Counts an entry that a closed handler did not put: this publisher may still serve other handlers."""
        with self._lock:
            self._dropped_closed += 1

    def _report_oversized(self, topic: str, truncated: bool) -> None:
        """A line on stderr at once, then at most one per 10 s saying how many since the last. Called with the lock held."""
        since = self._oversized.note(time.monotonic(), truncated=int(truncated), dropped=int(not truncated))
        if since is None:
            return
        times = since["times"]
        sys.stderr.write(
            f"aixcl_logging ({topic}): {times} log {'record' if times == 1 else 'records'} over max_message_bytes "
            f"({self._max_message_bytes} bytes, the bus' max_message_bytes) since the last such line: {since['truncated']} sent with "
            f'their longest texts cut ("truncated by aixcl-logging"), {since["dropped"]} dropped (too large even so); log less per '
            "record or raise both limits\n"
        )

    def flush(self, timeout: float) -> bool:
        """Waits until every queued entry went to the socket. Returns False at once while nothing can be sent (no
        subscriber); waiting for one is close()'s job."""
        deadline = time.monotonic() + timeout
        self._convert()
        with self._lock:
            while self._head_sending():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._drained.wait(min(remaining, 0.05))
            return not self._queue

    def close(self, timeout: float) -> Stats:
        """Waits up to `timeout` seconds for held entries to reach the bus, then stops; what is left counts as
        dropped_closed. libzmq gets what remains of the deadline to put sent entries on the wire."""
        deadline = time.monotonic() + timeout
        with self._lock:
            closed_before = self._closing
            self._closing = True
        if closed_before:
            self._thread.join()
            return self.stats()
        self._convert()
        with self._lock:
            self._wake()
            while self._queue:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._drained.wait(min(remaining, 0.05))
            self._stopping = True
            self._linger_ms = max(0, int((deadline - time.monotonic()) * 1000))
            self._wake()
        self._thread.join()
        # Counted once our thread is done: a send it had under way has been settled.
        with self._lock:
            self._dropped_closed += self._queue.clear()
            stats = self._stats()
        self._wake_tx.close(linger=0)
        self._context.term()
        return stats

    def abandon(self) -> None:
        """Lets go of a publisher a forked child inherited, without touching the parent's connection: pyzmq closes
        sockets and contexts only in the process that made them, and the thread that used them is not in the child."""
        self._context.destroy()

    def _wake(self) -> None:
        """Called with the lock held, which also serializes the application threads' use of this socket."""
        try:
            self._wake_tx.send(b"", zmq.NOBLOCK)
        except zmq.Again:
            pass  # a wake-up is already pending

    def _run(self) -> None:
        socket = self._context.socket(zmq.XPUB)
        socket.setsockopt(zmq.XPUB_NODROP, 1)
        socket.setsockopt(zmq.IMMEDIATE, 1)
        if self._curve is not None:
            socket.curve_serverkey = self._curve.server_key.encode()
            socket.curve_publickey = self._curve.public_key.encode()
            socket.curve_secretkey = self._curve.secret_key.encode()
        socket.connect(self._endpoint)
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        poller.register(self._wake_rx, zmq.POLLIN)
        try:
            while True:
                handed_over = self._handed_over
                self._convert(ROUND_ENTRIES)
                delay = self._batch_delay()
                full = delay <= 0 and self._send_round(socket)
                with self._lock:
                    if self._stopping:
                        break
                    sending = self._head_sending()
                    if not sending:
                        self._drained.notify_all()
                    more = bool(self._intake) or (delay <= 0 and not full and sending)
                    # The application logged during the round: its threads get the GIL for a while, unless what is
                    # held grows towards the limits.
                    pause = more and self._handed_over != handed_over and not self._held(2)
                    if more and not pause:
                        continue  # put_record() handed more over after we looked, without waking us
                    # Waiting out a batch window needs no wake-up for each entry, nor does an entry queued behind one
                    # nobody takes; close() and subscriptions wake us anyway.
                    self._idle = not self._queue and not self._intake
                timeout = FULL_QUEUE_RETRY_MS if full else YIELD_MS if pause else (max(1, int(delay * 1000)) if delay > 0 else None)
                for ready, _ in poller.poll(timeout):
                    if ready is self._wake_rx:
                        while self._wake_rx.poll(0):
                            self._wake_rx.recv()
                    elif ready is socket:
                        self._apply_subscriptions(socket)
        finally:
            socket.close(linger=self._linger_ms)
            self._wake_rx.close(linger=0)

    def _head_sending(self) -> bool:
        """The oldest queued entry can go: the bus takes its route. Called with the lock held."""
        head = self._queue.head()
        return head is not None and head.sending

    def _batch_delay(self) -> float:
        """Seconds the oldest queued entry still waits for company before a batch goes; 0 or less: send now."""
        with self._lock:
            head = self._queue.head()
            if head is None or not head.batching or self._closing or len(self._queue) >= BATCH_MAX_ENTRIES:
                return 0.0
            return self._first_queued_at + self._batch_window - time.monotonic()

    def _send_round(self, socket: zmq.Socket[bytes]) -> bool:
        """Sends the oldest queued entries, in order, while their routes are taken: the oldest entries of one route as
        one batch while its batch topic is taken and more than one waits (or only batches are taken), else up to
        ROUND_ENTRIES entries one by one. True when the socket is full."""
        with self._lock:
            route = self._queue.head()
            if route is None or not route.sending:
                self._drained.notify_all()
                return False
            if route.batching:
                payloads = self._queue.take(BATCH_MAX_ENTRIES, BATCH_MAX_BYTES)
                messages = [(route.topic, payloads[0])] if len(payloads) == 1 and route.wanted else None
            else:
                messages = [(entry_route.topic, payload) for payload, entry_route in self._queue.take_each(ROUND_ENTRIES, _wanted)]
        if messages is None:
            messages = [(route.batch_topic or b"", encode_log_batch(payloads))]
            sent_entries = len(payloads)
        else:
            sent_entries = 1
        sent = 0
        try:
            for topic, payload in messages:
                # Once the first frame is in, libzmq takes the rest of the message.
                socket.send(topic, zmq.NOBLOCK | zmq.SNDMORE)
                socket.send(payload, zmq.NOBLOCK)
                sent += sent_entries
        except zmq.Again:
            return True
        finally:
            # Entries evicted by put() while we sent are counted by how the send ended.
            with self._lock:
                self._queue.settle(sent)
        return False

    def _apply_subscriptions(self, socket: zmq.Socket[bytes]) -> None:
        prefixes = set(self._prefixes)
        while True:
            try:
                frame = socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if frame[:1] == b"\x01":
                prefixes.add(frame[1:])
            elif frame[:1] == b"\x00":
                prefixes.discard(frame[1:])
        with self._lock:
            self._prefixes = prefixes
            for route in self._routes.values():
                route.follow(prefixes)
