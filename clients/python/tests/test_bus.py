"""BusHandler against the real broker, log consumer and Loki (started by test/clients/python.test.ts)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import zmq

from aixcl_logging import HOLD_TOPIC, BusHandler
from aixcl_logging._proto import log_entry_pb2
from conftest import Loki, stack_env, wait_until

MakeLogger = Callable[..., tuple[logging.Logger, BusHandler]]


def test_every_field_arrives(make_logger: MakeLogger, loki: Loki, bus_endpoint: str) -> None:
    log, handler = make_logger("py_fields", "billing", endpoint=bus_endpoint)
    records: list[logging.LogRecord] = []
    handler.addFilter(lambda record: records.append(record) or True)
    wait_until(lambda: handler.connected, what="the handler to see the consumer's subscription")
    context = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "session_id": "sess-9", "user_uuid": "5b0c3f0e", "invoice": 1234, "lines": ["a", "b"]}
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("charging %s failed", "invoice-1234", extra=context)
        line = sys._getframe().f_lineno - 1
    log.log(25, "custom level between INFO and WARNING")
    log.critical("critical")
    handler.flush()
    assert handler.stats().buffered == 0

    entries = loki.wait_for('{service="py_fields"}', 3)
    failed = next(e for e in entries if e.message.startswith("charging"))
    assert failed.labels == {"service": "py_fields", "level": "error", "service_name": "py_fields"}
    assert failed.message.startswith("charging invoice-1234 failed\nTraceback (most recent call last):\n")
    assert failed.message.endswith("ZeroDivisionError: division by zero")
    # Loki adds detected_level itself.
    assert failed.fields == {
        "detected_level": "error",
        "module": "billing",
        "function": "test_every_field_arrives",
        "file_path": __file__,
        "line_number": str(line),
        "topic": "logs.py_fields.billing",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "session_id": "sess-9",
        "user_uuid": "5b0c3f0e",
        "meta_logger": log.name,
        "extra_invoice": "1234",
        "extra_lines": '["a","b"]',
    }
    # The record's own time, to the microsecond.
    assert abs(failed.ts - records[0].created * 1e9) < 1000
    levels = {e.message: e.labels["level"] for e in entries}
    assert (levels["custom level between INFO and WARNING"], levels["critical"]) == ("info", "critical")


def test_aico_wire_format_arrives_through_the_envelope(make_logger: MakeLogger, loki: Loki, bus_endpoint: str) -> None:
    log, handler = make_logger("py_aico", "main", endpoint=bus_endpoint, wire_format="aico")
    wait_until(lambda: handler.connected, what="subscription")
    log.warning("enveloped")
    [entry] = loki.wait_for('{service="py_aico"}', 1)
    assert (entry.message, entry.labels["level"], entry.fields["topic"]) == ("enveloped", "warning", "logs/py_aico/main/v1")


def test_10000_records_from_4_threads_none_lost(make_logger: MakeLogger, loki: Loki, bus_endpoint: str) -> None:
    log, handler = make_logger("py_threads", "load", endpoint=bus_endpoint, close_timeout=10)
    wait_until(lambda: handler.connected, what="subscription")
    start = threading.Barrier(4)

    def work(thread: int) -> None:
        start.wait()
        for i in range(2500):
            log.info("record %d-%d", thread, i, extra={"worker": thread})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    handler.flush()
    assert handler.stats().published == 10_000
    for thread in range(4):
        entries = loki.wait_for(f'{{service="py_threads"}} | logfmt | extra_worker="{thread}"', 2500, timeout=30)
        assert sorted(e.message for e in entries) == sorted(f"record {thread}-{i}" for i in range(2500))
    stats = handler.stats()
    assert (stats.dropped_buffer_full, stats.dropped_closed) == (0, 0)


@pytest.fixture
def late_broker() -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Starts the real broker (its built main.js) on ports where a log consumer is already waiting for it."""
    command = json.loads(stack_env("AIXCL_TEST_LATE_BROKER_COMMAND"))
    env = {**os.environ, **json.loads(stack_env("AIXCL_TEST_LATE_BROKER_ENV"))}
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, env=env, cwd=os.environ["AIXCL_TEST_REPO"], stdout=subprocess.DEVNULL)
        started.append(process)
        return process

    yield start
    for process in started:
        process.terminate()
        process.wait(10)


def test_broker_down_at_start_held_records_arrive_once_it_is_up(make_logger: MakeLogger, loki: Loki, late_broker: Callable[[], subprocess.Popen[bytes]]) -> None:
    log, handler = make_logger("py_late", endpoint=stack_env("AIXCL_TEST_LATE_PUB_ENDPOINT"))
    for i in range(100):
        log.info("held %d", i)
    time.sleep(0.3)
    assert not handler.connected
    assert (handler.stats().buffered, handler.stats().published) == (100, 0)
    started = time.monotonic()
    handler.flush()
    assert time.monotonic() - started < 0.5, "flush returns at once while nobody subscribes"

    late_broker()
    wait_until(lambda: handler.connected, timeout=20, what="the broker to start and the consumer to subscribe through it")
    handler.flush()
    assert handler.stats().buffered == 0
    entries = loki.wait_for('{service="py_late"}', 100)
    assert [e.message for e in entries] == [f"held {i}" for i in range(100)]


def test_a_leaving_subscriber_holding_hold_topic_holds_the_handler(make_logger: MakeLogger, loki: Loki, bus_endpoint: str) -> None:
    log, handler = make_logger("py_hold", endpoint=bus_endpoint)
    wait_until(lambda: handler.connected, what="subscription")
    context = zmq.Context.instance()
    leaving = context.socket(zmq.SUB)
    leaving.connect(stack_env("AIXCL_TEST_SUB_ENDPOINT"))
    leaving.subscribe(HOLD_TOPIC)
    try:
        wait_until(lambda: not handler.connected, what="the handler to hold")
        for i in range(3):
            log.info("held %d", i)
        assert handler.stats().buffered == 3
    finally:
        leaving.close(linger=0)
    wait_until(lambda: handler.connected, what="the hold to end with the subscriber's socket")
    entries = loki.wait_for('{service="py_hold"}', 3)
    assert [e.message for e in entries] == ["held 0", "held 1", "held 2"]


def test_a_full_send_queue_is_waited_out_not_dropped(make_logger: MakeLogger) -> None:
    """A broker with no_drop and high-water marks of 10, and a subscriber that does not read yet: the socket
    answers EAGAIN at its high-water mark and the handler retries, as the TypeScript logger does."""
    context = zmq.Context.instance()
    subscriber = context.socket(zmq.SUB)
    subscriber.setsockopt(zmq.RCVHWM, 10)
    subscriber.connect(stack_env("AIXCL_TEST_NODROP_SUB_ENDPOINT"))
    subscriber.subscribe(b"logs.")
    log, handler = make_logger("py_hwm", endpoint=stack_env("AIXCL_TEST_NODROP_PUB_ENDPOINT"), max_buffered=50_000, max_buffered_bytes=64 * 1024 * 1024)
    try:
        wait_until(lambda: handler.connected, what="subscription")
        pad = "x" * 2000
        for i in range(20_000):
            log.info("m%d", i, extra={"pad": pad})
        time.sleep(0.3)
        assert handler.stats().buffered > 0, "the queues along the way should be full by now"
        messages = []
        for _ in range(20_000):
            assert subscriber.poll(20_000), f"only {len(messages)} messages arrived"
            messages.append(log_entry_pb2.LogEntry.FromString(subscriber.recv_multipart()[1]).message)
        assert messages == [f"m{i}" for i in range(20_000)]
        assert handler.stats() == type(handler.stats())(published=20_000, buffered=0, dropped_buffer_full=0, dropped_closed=0, dropped_too_large=0, truncated=0)
    finally:
        subscriber.close(linger=0)


def test_a_closed_handler_drops_and_counts_and_close_says_what_it_could_not_send(capsys: pytest.CaptureFixture[str]) -> None:
    handler = BusHandler("py_nowhere", "main", "tcp://127.0.0.1:1", max_buffered=5, close_timeout=0.2)
    log = logging.getLogger("test.nowhere")
    log.propagate = False
    log.addHandler(handler)
    for i in range(8):
        log.warning("never delivered %d", i)
    assert handler.stats() == type(handler.stats())(published=0, buffered=5, dropped_buffer_full=3, dropped_closed=0, dropped_too_large=0, truncated=0)
    started = time.monotonic()
    handler.close()
    assert time.monotonic() - started < 1
    log.warning("after close")
    assert handler.stats() == type(handler.stats())(published=0, buffered=0, dropped_buffer_full=3, dropped_closed=6, dropped_too_large=0, truncated=0)
    report = "aixcl_logging: 8 log records for tcp://127.0.0.1:1 not delivered: 5 still held at close (no subscriber on the bus within 0.2 s), 3 dropped earlier because the queue was full, 0 too large for the bus, 0 not encodable; 0 delivered\n"
    assert capsys.readouterr().err == report
    # logging.shutdown() closes it again at exit: no second report.
    handler.close()
    assert capsys.readouterr().err == ""
    log.removeHandler(handler)


def run_app(script: str, endpoint: str) -> subprocess.CompletedProcess[str]:
    port = endpoint.rsplit(":", 1)[1]
    env = {**os.environ, "MESSAGE_BUS_HOST": "127.0.0.1", "MESSAGE_BUS_PUB_PORT": port}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True, text=True, timeout=60)


def test_an_application_that_never_closes_the_handler_loses_nothing_at_a_normal_exit(loki: Loki, bus_endpoint: str) -> None:
    """logging.shutdown(), which the interpreter runs at exit, closes every handler: that flushes ours."""
    result = run_app(
        """
        import logging
        from aixcl_logging import BusHandler
        logging.basicConfig(level=logging.INFO, handlers=[BusHandler("py_exit", "main")])
        for i in range(200):
            logging.info("before exit %d", i)
        """,
        bus_endpoint,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    entries = loki.wait_for('{service="py_exit"}', 200)
    assert sorted(e.message for e in entries) == sorted(f"before exit {i}" for i in range(200))


def test_an_application_killed_without_closing_loses_at_most_what_was_still_queued(loki: Loki, bus_endpoint: str) -> None:
    """os._exit skips logging.shutdown(): what the handler had sent is in Loki, and only the last few, logged
    right before the exit, may be missing."""
    result = run_app(
        """
        import logging, os, sys, time
        from aixcl_logging import BusHandler
        handler = BusHandler("py_killed", "main")
        logging.basicConfig(level=logging.INFO, handlers=[handler])
        while not handler.connected:
            time.sleep(0.01)
        for i in range(1000):
            logging.info("sent %d", i)
        while handler.stats().buffered:
            time.sleep(0.01)
        time.sleep(0.5)
        for i in range(50):
            logging.info("unsent %d", i)
        os._exit(0)
        """,
        bus_endpoint,
    )
    assert result.returncode == 0, result.stderr
    entries = loki.wait_for('{service="py_killed"}', 1000)
    # Pushes in flight can land out of order: read again until two reads 2 s apart agree.
    while True:
        time.sleep(2)
        again = loki.query_range('{service="py_killed"}')
        if len(again) == len(entries):
            break
        entries = again
    lines = [e.message for e in entries]
    assert len(lines) == len(set(lines)), "a record arrived twice"
    assert {f"sent {i}" for i in range(1000)} <= set(lines)
    # What was still queued at the exit is lost from its end: the unsent records that arrived are the first ones.
    unsent = sorted(int(line.removeprefix("unsent ")) for line in lines if line.startswith("unsent "))
    assert unsent == list(range(len(unsent)))
    assert len(lines) == 1000 + len(unsent)


def test_a_forked_child_publishes_through_a_socket_of_its_own(loki: Loki, bus_endpoint: str) -> None:
    """ZeroMQ sockets and the handler's thread do not survive os.fork(): the child gets its own publisher, and
    neither process sends the other's records."""
    result = run_app(
        """
        import logging, os, time
        from aixcl_logging import BusHandler
        handler = BusHandler("py_fork", "main")
        logging.basicConfig(level=logging.INFO, handlers=[handler])
        while not handler.connected:
            time.sleep(0.01)
        logging.info("parent before fork")
        pid = os.fork()
        if pid == 0:
            logging.info("child %d", os.getpid())
            logging.shutdown()
            os._exit(0)
        os.waitpid(pid, 0)
        logging.info("parent after fork")
        """,
        bus_endpoint,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    entries = loki.wait_for('{service="py_fork"}', 3)
    lines = sorted(e.message for e in entries)
    assert len(lines) == 3 and lines[0].startswith("child ") and lines[1:] == ["parent after fork", "parent before fork"]


def test_curve_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch, make_logger: MakeLogger) -> None:
    """A CURVE broker admitting python-app and python-sub: the handler finds its key pair through
    MESSAGE_BUS_KEYS_DIR and MESSAGE_BUS_CLIENT_NAME; a plaintext handler never gets a subscription."""
    keys = stack_env("AIXCL_TEST_KEYS_DIR")
    context = zmq.Context.instance()
    subscriber = context.socket(zmq.SUB)
    subscriber.curve_serverkey = open(f"{keys}/broker.pub", "rb").read().strip()
    subscriber.curve_publickey = open(f"{keys}/clients/python-sub.pub", "rb").read().strip()
    subscriber.curve_secretkey = open(f"{keys}/clients/python-sub.secret", "rb").read().strip()
    subscriber.connect(stack_env("AIXCL_TEST_CURVE_SUB_ENDPOINT"))
    subscriber.subscribe(b"logs.")
    try:
        plaintext = BusHandler("py_curve", "plain", stack_env("AIXCL_TEST_CURVE_PUB_ENDPOINT"), close_timeout=0.1)
        monkeypatch.setenv("MESSAGE_BUS_KEYS_DIR", keys)
        monkeypatch.setenv("MESSAGE_BUS_CLIENT_NAME", "python-app")
        log, handler = make_logger("py_curve", "encrypted", endpoint=stack_env("AIXCL_TEST_CURVE_PUB_ENDPOINT"))
        wait_until(lambda: handler.connected, what="the CURVE handshake and the subscription")
        log.info("over CURVE")
        assert subscriber.poll(10_000)
        topic, payload = subscriber.recv_multipart()
        assert (topic, log_entry_pb2.LogEntry.FromString(payload).message) == (b"logs.py_curve.encrypted", "over CURVE")
        assert not plaintext.connected
        plaintext.close()
    finally:
        subscriber.close(linger=0)
