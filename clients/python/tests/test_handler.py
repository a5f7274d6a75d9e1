"""One handler for a whole application: modules from logger names, one publisher per process, fork, exit and
dictConfig. Against a local ZeroMQ XSUB standing where the broker's is (no stack needed)."""

from __future__ import annotations

import logging
import logging.config
import os
import stat
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from test_loss import Upstream

from aixcl_logging import BusHandler, Stats, publisher, records, registry, wire
from aixcl_logging.handler import ROUTE_CACHE_SIZE


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    u = Upstream()
    yield u
    u.close()


def io_threads() -> int:
    return sum(t.name.startswith("aixcl-logging") for t in threading.enumerate())


def stats_once_published(handler: BusHandler, count: int, timeout: float = 5.0) -> Stats:
    """The handler's stats once `count` records are counted published, or at the timeout: a message can reach the
    subscriber before the I/O thread has counted its send."""
    deadline = time.monotonic() + timeout
    while (stats := handler.stats()).published < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return stats


def fresh_logger(name: str, handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger(name)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.handlers[:] = [handler]
    return log


def test_without_a_module_each_record_takes_its_loggers_name_sanitized(upstream: Upstream) -> None:
    handler = BusHandler("py_app", endpoint=upstream.endpoint, close_timeout=0.5)
    try:
        upstream.subscribe(b"logs.", handler)
        app = fresh_logger("shop", handler)
        app.info("from shop")
        logging.getLogger("shop.Billing v2").info("from billing")  # propagates to "shop"
        entries = upstream.receive(2)
        assert [(e.message, e.module, e.topic, e.metadata["logger"]) for e in entries] == [
            ("from shop", "shop", "logs.py_app.shop", "shop"),
            ("from billing", "shop_billing_v2", "logs.py_app.shop_billing_v2", "shop.Billing v2"),
        ]
    finally:
        handler.close()


def test_records_are_as_at_call_time_and_as_the_formatter_would_write_them(upstream: Upstream) -> None:
    """The entry is encoded on the publisher's thread, later: what it carries must not change after the call, and
    skipping the default formatter must give what it gives (exc_info=True outside an exception appends a line)."""
    handler = BusHandler("py_app", "calltime", upstream.endpoint, close_timeout=0.5)
    try:
        upstream.subscribe(b"logs.", handler)
        log = fresh_logger("calltime", handler)
        tags = ["a"]
        log.info("tags %s", tags, extra={"tags": tags})
        tags.append("b")
        log.info("no exception", exc_info=True)
        log.info("stack", stack_info=True)
        first, second, third = upstream.receive(3)
        assert (first.message, first.extra["tags"]) == ("tags ['a']", '["a"]')
        assert second.message == "no exception\nNoneType: None"
        assert third.message.startswith("stack\nStack (most recent call last):")
    finally:
        handler.close()


def test_a_record_that_cannot_become_an_entry_is_counted_once_and_the_others_go_on(upstream: Upstream, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real = publisher.entry_from_captured

    def poisoned(captured: records.Captured, subsystem: str, module: str, topic: str) -> wire.Entry:
        if "poison" in captured:
            raise ValueError("cannot encode this one")
        return real(captured, subsystem, module, topic)

    monkeypatch.setattr(publisher, "entry_from_captured", poisoned)
    handler = BusHandler("py_app", "poison", upstream.endpoint, close_timeout=0.5)
    try:
        upstream.subscribe(b"logs.", handler)
        log = fresh_logger("encodable", handler)
        for message in ("before", "poison", "after"):
            log.info(message)
        assert [e.message for e in upstream.receive(2)] == ["before", "after"]
        stats = stats_once_published(handler, 2)
        assert (stats.published, stats.dropped_unencodable, stats.buffered) == (2, 1, 0)
    finally:
        handler.close()
    assert "could not be encoded, not sent: ValueError('cannot encode this one')" in capsys.readouterr().err


def test_handlers_of_one_endpoint_share_one_socket_and_thread_until_the_last_closes(upstream: Upstream) -> None:
    before = (registry.lease_count(), io_threads())
    handlers = [BusHandler("py_share", f"m{i}", upstream.endpoint, close_timeout=0.5) for i in range(5)]
    handlers.append(BusHandler("py_share", endpoint=upstream.endpoint, close_timeout=0.5))
    assert (registry.lease_count(), io_threads()) == (before[0] + 1, before[1] + 1)
    upstream.subscribe(b"logs.", handlers[0])
    for i, handler in enumerate(handlers[:-1]):
        handler.close()
        fresh_logger(f"share.{i}", handlers[-1]).info("after %d closed", i)
    assert [e.message for e in upstream.receive(5)] == [f"after {i} closed" for i in range(5)]
    assert registry.lease_count() == before[0] + 1
    handlers[-1].close()
    assert (registry.lease_count(), io_threads()) == before


def test_repeated_forks_keep_one_publisher_and_every_child_still_sends(upstream: Upstream) -> None:
    """A pre-forking server recycling its workers, and a worker that forks in turn: each process has one publisher
    and one I/O thread, and each sends through its own."""
    handler = BusHandler("py_forks", endpoint=upstream.endpoint, close_timeout=5)
    log = fresh_logger("forks", handler)
    upstream.subscribe(b"logs.", handler)
    # This XSUB gives a subscription only to the connections it has: the children's new ones need it again.
    resending = threading.Event()

    def resend() -> None:
        while not resending.is_set():
            upstream.socket.send(b"\x01logs.")
            time.sleep(0.02)

    def child(name: str, depth: int) -> None:
        """Runs in the child; its exit status says what went wrong."""
        status = 0
        try:
            if (registry.lease_count(), io_threads()) != (1, 1):
                status = 3
            log.info("%s", name)
            if stats_once_published(handler, 1).published != 1:
                status = status or 4
            if depth and not status:
                status = fork_and_wait(f"{name}.grandchild", depth - 1)
            # As logging.shutdown() at a normal exit: close lets libzmq put what went to the socket on the wire.
            handler.close()
        finally:
            os._exit(status)

    def fork_and_wait(name: str, depth: int) -> int:
        pid = os.fork()
        if pid == 0:
            child(name, depth)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    sender = threading.Thread(target=resend)
    sender.start()
    try:
        statuses = [fork_and_wait(f"child {i}", depth=2) for i in range(5)]
    finally:
        resending.set()
        sender.join()
    assert statuses == [0] * 5, "3: more than one publisher or thread in a child; 4: a child's record was not sent"
    assert (registry.lease_count(), io_threads()) == (1, 1)
    names = sorted(e.message for e in upstream.receive(15))
    assert names == sorted(f"child {i}{g}" for i in range(5) for g in ("", ".grandchild", ".grandchild.grandchild"))
    log.info("parent still sends")
    assert upstream.receive(16)[-1].message == "parent still sends"
    handler.close()


def test_logging_shutdown_waits_at_most_close_timeout_in_all_and_other_threads_are_not_blocked() -> None:
    """A subscriber that takes nothing more: the socket is full, flush() and close() would each wait their full time."""
    upstream = Upstream()
    upstream.socket.setsockopt(zmq.RCVHWM, 1)
    handler = BusHandler("py_exit", "main", upstream.endpoint, close_timeout=1.0, max_buffered=50_000, max_buffered_bytes=256 * 1024 * 1024)
    try:
        log = fresh_logger("exit", handler)
        upstream.subscribe(b"logs.", handler)
        pad = "x" * 4000
        for i in range(30_000):
            log.info("m%d", i, extra={"pad": pad})
        assert handler.stats().buffered > 0
        done = threading.Event()
        started = time.monotonic()
        shutdown = threading.Thread(target=lambda: (logging.shutdown([weakref.ref(handler)]), done.set()))
        shutdown.start()
        time.sleep(0.1)
        call = time.monotonic()
        log.info("while shutting down")
        assert time.monotonic() - call < 0.1, "logging from another thread waited for the shutdown"
        shutdown.join()
        elapsed = time.monotonic() - started
        assert done.is_set() and elapsed < 1.0 + 0.4, f"logging.shutdown() took {elapsed:.2f} s with close_timeout 1 s"
        assert handler.stats().dropped_closed > 0
    finally:
        handler.close()
        upstream.close()


def test_an_unreachable_broker_with_held_records_shuts_down_within_close_timeout() -> None:
    handler = BusHandler("py_exit2", endpoint="tcp://127.0.0.1:1", close_timeout=0.3)
    log = fresh_logger("exit2", handler)
    for i in range(100):
        log.info("held %d", i)
    started = time.monotonic()
    logging.shutdown([weakref.ref(handler)])
    assert time.monotonic() - started < 0.3 + 0.2
    assert handler.stats().dropped_closed == 100


def test_logger_names_made_per_request_leave_the_publishers_routes_bounded() -> None:
    """A route per module name: the publisher keeps only those a handler remembers or a held record goes by, however
    many names come and go (logger names with a request id in them, say)."""
    handler = BusHandler("py_names", endpoint="tcp://127.0.0.1:1", max_buffered=100, close_timeout=0)
    try:
        for i in range(100_000):
            handler.handle(logging.makeLogRecord({"name": f"request.{i}", "msg": "handled", "levelno": logging.INFO, "levelname": "INFO"}))
        held = handler.stats()
        routes = handler._lease.publisher.route_count()
        assert (held.buffered, held.dropped_buffer_full) == (100, 99_900)
        assert routes <= ROUTE_CACHE_SIZE + 100, routes
    finally:
        handler.close()


def write_keys(root: Path, name: str) -> tuple[bytes, bytes]:
    """A keys folder as `./aixcl keys` makes it; returns the broker's key pair."""
    broker_public, broker_secret = zmq.curve_keypair()
    public, secret = zmq.curve_keypair()
    (root / "clients").mkdir(parents=True)
    (root / "broker.pub").write_bytes(broker_public)
    (root / "clients" / f"{name}.pub").write_bytes(public)
    secret_file = root / "clients" / f"{name}.secret"
    secret_file.write_bytes(secret)
    secret_file.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return broker_public, broker_secret


@pytest.mark.parametrize("keys_by", ["folder", "files"])
def test_dictconfig_builds_the_handler_with_curve_keys_and_honours_its_formatter(tmp_path: Path, keys_by: str) -> None:
    _public, broker_secret = write_keys(tmp_path, "app")
    upstream = Upstream(curve_secret_key=broker_secret)
    keys: dict[str, str] = (
        {"keys_dir": str(tmp_path), "client_name": "app"}
        if keys_by == "folder"
        else {
            "broker_key_file": str(tmp_path / "broker.pub"),
            "public_key_file": str(tmp_path / "clients" / "app.pub"),
            "secret_key_file": str(tmp_path / "clients" / "app.secret"),
        }
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "incremental": False,
            "disable_existing_loggers": False,
            "formatters": {"short": {"format": "%(levelname)s|%(message)s"}},
            "handlers": {
                "bus": {"class": "aixcl_logging.BusHandler", "subsystem": "py_dict", "endpoint": upstream.endpoint, "formatter": "short", "close_timeout": 0.5, **keys},
            },
            "loggers": {"dictapp": {"handlers": ["bus"], "level": "INFO", "propagate": False}},
        }
    )
    log = logging.getLogger("dictapp")
    [handler] = log.handlers
    try:
        assert isinstance(handler, BusHandler)
        upstream.subscribe(b"logs.", handler)
        log.warning("over CURVE")
        [entry] = upstream.receive(1)
        assert (entry.message, entry.module, entry.level) == ("WARNING|over CURVE", "dictapp", 30)
    finally:
        log.handlers.clear()
        handler.close()
        upstream.close()


def test_keys_given_two_ways_or_half_given_are_refused_saying_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keys_dir and client_name go together"):
        BusHandler("s", keys_dir=str(tmp_path))
    with pytest.raises(ValueError, match="give all three"):
        BusHandler("s", broker_key_file=str(tmp_path / "broker.pub"))
    with pytest.raises(ValueError, match="one way, not keys_dir and key files"):
        BusHandler("s", keys_dir=str(tmp_path), client_name="a", secret_key_file="x")
