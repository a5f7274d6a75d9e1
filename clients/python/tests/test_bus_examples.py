"""The applications in examples/, run as a user would, against the real broker, log consumer and Loki (started by
test/clients/python.test.ts): what each logged is in Loki, under its module."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conftest import Loki, wait_until

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def bus_env(endpoint: str) -> dict[str, str]:
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    return {**os.environ, "MESSAGE_BUS_HOST": host, "MESSAGE_BUS_PUB_PORT": port}


def run_example(name: str, endpoint: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, str(EXAMPLES / name)], env=bus_env(endpoint), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result


def lines_by_module(loki: Loki, service: str, count: int) -> list[tuple[str, str]]:
    """(module, first line of the message) of the service's entries, once `count` arrived; then no more may."""
    entries = loki.wait_for(f'{{service="{service}"}}', count)
    time.sleep(1)
    entries = loki.query_range(f'{{service="{service}"}}')
    return sorted((e.fields["module"], e.message.split("\n", 1)[0]) for e in entries)


def test_dictconfig_example(loki: Loki, bus_endpoint: str) -> None:
    run_example("dictconfig_app.py", bus_endpoint)
    assert lines_by_module(loki, "example_dictconfig", 3) == [
        ("shop_billing", "charging invoice 1001 failed"),
        ("shop_billing", "invoice 1001 overdue"),
        ("shop_orders", "order 1001 placed"),
    ]
    [failed] = loki.query_range('{service="example_dictconfig"} |= "charging"')
    assert failed.message.endswith("ZeroDivisionError: division by zero") and failed.labels["level"] == "error"


def test_django_logging_setting_example(loki: Loki, bus_endpoint: str) -> None:
    run_example("django_app.py", bus_endpoint)
    assert lines_by_module(loki, "example_django", 2) == [("django_request", "Internal Server Error: /checkout"), ("shop_views", "listing orders")]
    [error] = loki.query_range('{service="example_django"} |= "Internal Server Error"')
    assert error.message.endswith("RuntimeError: payment provider unreachable")
    assert error.fields["meta_logger"] == "django.request" and error.fields["extra_status_code"] == "500"


def test_loguru_example(loki: Loki, bus_endpoint: str) -> None:
    run_example("loguru_app.py", bus_endpoint)
    assert lines_by_module(loki, "example_loguru", 2) == [("__main__", "charging invoice 1001 failed"), ("__main__", "order 1001 placed")]
    [placed] = loki.query_range('{service="example_loguru"} |= "placed"')
    assert (placed.labels["level"], placed.fields["extra_extra"]) == ("info", '{"order_id":1001}')
    [failed] = loki.query_range('{service="example_loguru"} |= "charging"')
    assert "ZeroDivisionError: division by zero" in failed.message and failed.labels["level"] == "error"


def test_structlog_through_the_standard_library_example(loki: Loki, bus_endpoint: str) -> None:
    run_example("structlog_app.py", bus_endpoint)
    assert lines_by_module(loki, "example_structlog", 2) == [("shop_checkout", "checkout started"), ("shop_checkout", "coupon rejected")]
    [rejected] = loki.query_range('{service="example_structlog"} |= "coupon"')
    assert rejected.labels["level"] == "warning"
    assert (rejected.fields["extra_cart_id"], rejected.fields["extra_coupon"], rejected.fields["trace_id"]) == ("42", "SPRING", "4bf92f3577b34da6a3ce929d0e0e4736")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_gunicorn_prefork_example(loki: Loki, bus_endpoint: str) -> None:
    port = free_port()
    gunicorn = [sys.executable, "-m", "gunicorn", "--preload", "--workers", "2", "--no-control-socket", "--bind", f"127.0.0.1:{port}", "--chdir", str(EXAMPLES), "gunicorn_app:app"]
    server = subprocess.Popen(gunicorn, env=bus_env(bus_endpoint), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:

        def answers() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1):
                    return True
            except OSError:
                return False

        wait_until(answers, timeout=30, what="gunicorn to answer")
        for i in range(20):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/orders/{i}", timeout=5) as response:
                assert response.read() == b"ok\n"
    finally:
        server.send_signal(signal.SIGTERM)  # graceful: the workers finish, exit, and send what they hold
        _, errors = server.communicate(timeout=60)
    assert server.returncode == 0, errors
    entries = loki.wait_for('{service="example_gunicorn"}', 22)
    time.sleep(1)
    lines = [e.message for e in loki.query_range('{service="example_gunicorn"}')]
    [loaded] = [line for line in lines if line.startswith("app loaded")]
    master = loaded.rsplit(" ", 1)[1]
    requests = sorted(line for line in lines if line.startswith("GET /orders/"))
    assert len(lines) == 22 and len(requests) == 20, lines
    assert sorted(int(line.split()[1].rsplit("/", 1)[1]) for line in requests) == list(range(20))
    workers = {line.rsplit(" ", 1)[1] for line in requests + [line for line in lines if line.startswith("GET /ready")]}
    assert master not in workers, "requests are served by forked workers, each with a socket of its own"
    assert {e.fields["module"] for e in entries} == {"shop_api"}
