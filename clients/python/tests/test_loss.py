"""Every record counted once, and none sent that the bus refuses. Pure parts without sockets; the publisher against a
local ZeroMQ XSUB standing where the broker's is (no stack needed)."""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from aixcl_logging import BusHandler
from aixcl_logging._proto import log_entry_pb2
from aixcl_logging.fit import MAX_MESSAGE_BYTES, truncation_marker
from aixcl_logging.sendqueue import SendQueue
from aixcl_logging.throttle import Throttle

CONFIG = Path(__file__).resolve().parents[3] / "config" / "message_bus.yaml"


# --- fit_entry -------------------------------------------------------------------------------------------------------


def test_the_default_limit_is_the_brokers_default_max_message_bytes() -> None:
    match = re.search(r"^\s*max_message_bytes:\s*(\d+)MiB", CONFIG.read_text(), re.MULTILINE)
    assert match is not None, f"no max_message_bytes in {CONFIG}"
    assert MAX_MESSAGE_BYTES == int(match.group(1)) * 1024 * 1024


# How an entry is cut to fit, or dropped: spec/wire/fit.json (test_spec.py).


# --- SendQueue -------------------------------------------------------------------------------------------------------


def counted(q: SendQueue) -> int:
    return q.sent + q.evicted + len(q)


def test_the_queue_is_bounded_in_bytes_as_well_as_entries() -> None:
    q: SendQueue[str] = SendQueue(100, 1000)
    for i in range(10):
        q.push(bytes([i]) * 300, "r")
    assert (len(q), q.bytes, q.evicted) == (3, 900, 7)
    q = SendQueue(3, 1_000_000)
    for i in range(5):
        q.push(bytes([i]), "r")
    assert (len(q), q.evicted, q.take(10, 100)) == (3, 2, [b"\x02", b"\x03", b"\x04"])


def test_a_send_takes_only_the_oldest_entries_of_the_oldest_ones_route() -> None:
    """One batch carries one topic: entries of another module wait for the next send."""
    q: SendQueue[str] = SendQueue(10, 1000)
    for payload, route in ((b"1", "a"), (b"2", "a"), (b"3", "b"), (b"4", "a")):
        q.push(payload, route)
    assert (q.head(), q.take(10, 1000)) == ("a", [b"1", b"2"])
    q.settle(2)
    assert (q.head(), q.take(10, 1000)) == ("b", [b"3"])
    q.settle(1)
    assert (q.head(), q.take(10, 1000)) == ("a", [b"4"])


def test_an_entry_evicted_during_its_send_counts_as_sent_when_the_send_succeeds() -> None:
    q: SendQueue[str] = SendQueue(2, 1000)
    q.push(b"1", "r")
    q.push(b"2", "r")
    assert q.take(2, 1000) == [b"1", b"2"]
    q.push(b"3", "r")  # evicts 1, which is being sent
    q.push(b"4", "r")  # evicts 2
    q.settle(2)
    assert (q.sent, q.evicted, q.take(5, 1000), counted(q)) == (2, 0, [b"3", b"4"], 4)


def test_an_entry_evicted_during_its_send_counts_as_evicted_when_the_send_fails() -> None:
    q: SendQueue[str] = SendQueue(3, 1000)
    for p in (b"1", b"2", b"3"):
        q.push(p, "r")
    assert q.take(2, 1000) == [b"1", b"2"]
    q.push(b"4", "r")  # evicts 1
    q.settle(0)
    assert (q.sent, q.evicted, len(q), q.bytes) == (0, 1, 3, 3)
    q.take(1, 1000)
    with pytest.raises(RuntimeError, match="settle"):
        q.clear()
    q.settle(0)
    assert (q.clear(), len(q), counted(q)) == (3, 0, 1)


def test_single_sends_take_the_oldest_entries_of_any_taken_route_and_settle_what_went() -> None:
    """Entries sent one by one go many per look at the queue, up to the first whose route nobody takes; a send that
    stops part way keeps the rest queued, and of the entries evicted meanwhile those that went count as sent."""
    q: SendQueue[str] = SendQueue(4, 1000)
    for payload, route in ((b"1", "a"), (b"2", "b"), (b"3", "a"), (b"4", "off")):
        q.push(payload, route)
    assert q.take_each(10, lambda route: route != "off") == [(b"1", "a"), (b"2", "b"), (b"3", "a")]
    q.push(b"5", "a")  # evicts 1
    q.push(b"6", "a")  # evicts 2
    with pytest.raises(ValueError, match="took 3"):
        q.settle(4)
    q.settle(1)  # 1 went, 2 was evicted unsent, 3 stays
    assert (q.sent, q.evicted, q.take_each(2, lambda route: True), counted(q)) == (1, 1, [(b"3", "a"), (b"4", "off")], 6)
    q.settle(2)
    assert (q.sent, len(q), q.bytes, q.take_each(5, lambda route: True)) == (3, 2, 2, [(b"5", "a"), (b"6", "a")])


def test_the_throttle_says_the_first_at_once_then_once_per_interval_what_happened_since() -> None:
    t = Throttle(10.0)
    assert t.note(0.0, truncated=1, dropped=0) == {"times": 1, "truncated": 1, "dropped": 0}
    assert t.note(1.0, truncated=0, dropped=1) is None
    assert t.note(9.9, truncated=1, dropped=0) is None
    assert t.note(10.0, truncated=1, dropped=0) == {"times": 3, "truncated": 2, "dropped": 1}


# --- the publisher -----------------------------------------------------------------------------------------------------


class Upstream:
    """A ZeroMQ XSUB where the broker's is, with the broker's maxMessageSize: what the handler sends, it receives."""

    def __init__(self, max_message_size: int = -1, curve_secret_key: bytes | None = None) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.XSUB)
        if curve_secret_key is not None:
            self.socket.curve_server = True
            self.socket.curve_secretkey = curve_secret_key
        self.socket.setsockopt(zmq.MAXMSGSIZE, max_message_size)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind("tcp://127.0.0.1:*")
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.entries: list[log_entry_pb2.LogEntry] = []

    def subscribe(self, prefix: bytes, handler: BusHandler) -> None:
        """This XSUB passes a subscription only to the publishers connected when it is sent (the broker passes them
        to later ones too): it is sent again until the handler has it."""
        deadline = time.monotonic() + 10
        while not handler.connected:
            assert time.monotonic() < deadline, "the handler never saw the subscription"
            self.socket.send(b"\x01" + prefix)
            time.sleep(0.01)

    def receive(self, count: int, timeout: float = 5.0) -> list[log_entry_pb2.LogEntry]:
        deadline = time.monotonic() + timeout
        while len(self.entries) < count and time.monotonic() < deadline:
            if self.socket.poll(50):
                _topic, payload = self.socket.recv_multipart()
                self.entries.append(log_entry_pb2.LogEntry.FromString(payload))
        assert len(self.entries) >= count, f"{len(self.entries)} of {count} entries arrived in {timeout} s"
        return self.entries

    def close(self) -> None:
        self.socket.close()
        self.context.term()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    u = Upstream(max_message_size=MAX_MESSAGE_BYTES)
    yield u
    u.close()


def logger(handler: BusHandler, name: str) -> logging.Logger:
    log = logging.getLogger(f"test.loss.{name}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.handlers[:] = [handler]
    return log


def test_a_record_over_max_message_bytes_is_cut_at_the_client_so_the_connection_and_the_records_after_it_survive(
    upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = BusHandler("py_size", "main", upstream.endpoint, close_timeout=0.5)
    log = logger(handler, "size")
    upstream.subscribe(b"logs.", handler)
    for i in range(100):
        log.info("before %d", i)
    log.info("x" * (2 * 1024 * 1024))
    for i in range(100):
        log.info("after %d", i)
    entries = upstream.receive(201)
    assert entries[100].message.startswith("xxx") and entries[100].message.endswith(truncation_marker(2 * 1024 * 1024))
    assert entries[200].message == "after 99"
    handler.close()
    stats = handler.stats()
    assert (stats.published, stats.truncated, stats.dropped_too_large, stats.dropped_buffer_full) == (201, 1, 0, 0)
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("aixcl_logging (logs.py_size.main): 1 log record over max_message_bytes (1048576 bytes")


def test_max_message_bytes_is_an_option_and_what_cannot_fit_even_cut_is_dropped_and_counted(capsys: pytest.CaptureFixture[str]) -> None:
    u = Upstream(max_message_size=64 * 1024)
    try:
        handler = BusHandler("py_size2", "main", u.endpoint, max_message_bytes=64 * 1024, close_timeout=0.5)
        log = logger(handler, "size2")
        u.subscribe(b"logs.", handler)
        log.info("large extra", extra={"body": "b" * 100_000})
        log.info("too many fields", extra={f"k{i}": "v" * 20 for i in range(5000)})
        log.info("fine")
        entries = u.receive(2)
        assert [e.message for e in entries] == ["large extra", "fine"]
        assert entries[0].extra["body"].endswith(truncation_marker(100_000))
        handler.close()
        stats = handler.stats()
        assert (stats.published, stats.truncated, stats.dropped_too_large) == (2, 1, 1)
        # One line at once; the second occurrence falls within the interval. Then close's report.
        assert capsys.readouterr().err.count("over max_message_bytes") == 1
    finally:
        u.close()


def test_limits_that_cannot_work_are_refused_saying_which() -> None:
    with pytest.raises(ValueError, match="max_message_bytes must be at least 1024"):
        BusHandler("s", "m", "tcp://127.0.0.1:1", max_message_bytes=100)
    with pytest.raises(ValueError, match=r"max_buffered_bytes \(1000\) must be at least max_message_bytes \(1048576\)"):
        BusHandler("s", "m", "tcp://127.0.0.1:1", max_buffered_bytes=1000)


def test_while_nobody_subscribes_at_most_max_buffered_bytes_are_held_the_oldest_dropped_and_counted() -> None:
    handler = BusHandler("py_bytes", "main", "tcp://127.0.0.1:1", max_buffered_bytes=8 * 1024, max_message_bytes=1024, close_timeout=0.1)
    try:
        for i in range(100):
            handler.handle(logging.LogRecord("app", logging.INFO, "/app.py", 1, "%03d %s", (i, "p" * 500), None, func="f"))
        stats = handler.stats()
        # Each record encodes to about 600 bytes (with the logger's name and the time): 13 fit 8 KiB.
        assert (stats.buffered, stats.dropped_buffer_full) == (13, 87)
    finally:
        handler.close()


def test_every_record_is_counted_once_when_a_full_queue_evicts_entries_being_sent(upstream: Upstream) -> None:
    """The application threads evict from a one-entry queue while the publisher's thread sends from it."""
    handler = BusHandler("py_once", "main", upstream.endpoint, max_buffered=1, close_timeout=2.0)
    log = logger(handler, "once")
    upstream.subscribe(b"logs.", handler)
    per_thread, threads = 20_000, 2
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # let the threads interleave as often as they can
    try:
        workers = [threading.Thread(target=lambda: [log.info("n") for _ in range(per_thread)]) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        sys.setswitchinterval(interval)
    handler.close()
    stats = handler.stats()
    assert stats.published + stats.dropped_buffer_full + stats.dropped_closed + stats.buffered == per_thread * threads
    assert len(upstream.receive(stats.published)) == stats.published
