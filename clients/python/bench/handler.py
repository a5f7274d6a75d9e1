"""What BusHandler costs the application's thread, beside the standard library's FileHandler writing the same records.

    python clients/python/bench/handler.py --endpoint tcp://127.0.0.1:5555 [--records 200000] [--paced 5000 --rate 2000]

Needs a running broker with a subscriber draining it at --endpoint. Prints one JSON object. For each of our handler
(BusHandler, module fixed), logging.FileHandler into a temporary file (twice: with a line that carries what an
entry carries, time, level, logger and message, and with the message alone) and a NullHandler: the application
thread's wall time per log.info call flat out (--records calls, GIL waits included), and paced at --rate records/s
the median and 99th percentile of --paced single calls (a call after a pause is slower on any machine, whatever it
does: the NullHandler's figures say how much). For ours also: records/s flat out until the last was handed to the
socket, process CPU per record (all threads, libzmq's too) and the application thread's own CPU per call. Then
records/s with ONE BusHandler on the root logger (module from each logger's name) and 20 loggers taking turns.
`npm run bench:clients` runs it beside the TypeScript logger.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable

from aixcl_logging import BusHandler

#: The line the file handler writes: what a LogEntry carries beside the message (time, level, logger name).
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
LOGGERS = 20


def wait(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out: is a broker with a subscriber running at --endpoint?")
        time.sleep(0.0005)


def logger_with(name: str, handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger(name)
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    return log


def flood(log: logging.Logger, count: int, extra: dict[str, object]) -> tuple[float, float]:
    """Wall and thread-CPU microseconds per call of `count` log.info calls made as fast as possible."""
    cpu0, t0 = time.thread_time(), time.perf_counter()
    for i in range(count):
        log.info("request %d handled", i, extra=extra)
    return (time.perf_counter() - t0) / count * 1e6, (time.thread_time() - cpu0) / count * 1e6


def paced(log: logging.Logger, count: int, rate: int, extra: dict[str, object]) -> list[float]:
    """Microseconds of each of `count` log.info calls made at `rate` per second, sorted."""
    calls: list[float] = []
    start = time.perf_counter()
    for i in range(count):
        due = start + i / rate
        while (now := time.perf_counter()) < due:
            time.sleep(max(0.0, min(due - now, 0.001)))
        before = time.perf_counter_ns()
        log.info("request %d handled", i, extra=extra)
        calls.append((time.perf_counter_ns() - before) / 1000)
    return sorted(calls)


def cost(flood_us: float, calls: list[float]) -> dict[str, float]:
    return {"flood": flood_us, "p50": statistics.median(calls), "p99": calls[int(len(calls) * 0.99)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--paced", type=int, default=5_000, help="calls timed one by one")
    parser.add_argument("--rate", type=int, default=2_000, help="records/s of the paced part")
    args = parser.parse_args()
    extra = {"path": "/api/orders", "status": 200}
    limits = {"max_buffered": args.records, "max_buffered_bytes": args.records * 1024, "close_timeout": 10}

    handler = BusHandler("bench_py", "load", args.endpoint, **limits)
    log = logger_with("bench", handler)
    wait(lambda: handler.connected)
    cpu0, t0 = time.process_time(), time.perf_counter()
    ours_us, ours_cpu_us = flood(log, args.records, extra)
    wait(lambda: handler.stats().published >= args.records)
    total = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    costs = {"ours": cost(ours_us, paced(log, args.paced, args.rate, extra))}
    handler.close()
    stats = handler.stats()

    with tempfile.TemporaryDirectory() as folder:
        for name, fmt in (("file", FILE_FORMAT), ("file_message_only", "%(message)s")):
            file_handler = logging.FileHandler(os.path.join(folder, f"{name}.log"))
            file_handler.setFormatter(logging.Formatter(fmt))
            file_log = logger_with(f"bench.{name}", file_handler)
            file_us, _ = flood(file_log, args.records, extra)
            costs[name] = cost(file_us, paced(file_log, args.paced, args.rate, extra))
            file_handler.close()
    null_log = logger_with("bench.null", logging.NullHandler())
    null_us, _ = flood(null_log, args.records, extra)
    costs["null"] = cost(null_us, paced(null_log, args.paced, args.rate, extra))

    # One handler on the root logger for a whole application: each record's module from its logger's name.
    root_handler = BusHandler("bench_py", None, args.endpoint, **limits)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(root_handler)
    loggers = [logging.getLogger(f"app.component{n:02d}") for n in range(LOGGERS)]
    wait(lambda: root_handler.connected)
    published0 = root_handler.stats().published
    t0 = time.perf_counter()
    for i in range(args.records):
        loggers[i % LOGGERS].info("request %d handled", i, extra=extra)
    root_loop = time.perf_counter() - t0
    wait(lambda: root_handler.stats().published - published0 >= args.records)
    root_total = time.perf_counter() - t0
    root.removeHandler(root_handler)
    root_handler.close()
    root_stats = root_handler.stats()

    print(
        json.dumps(
            {
                "client": "python",
                "records": args.records,
                "records_per_s": args.records / total,
                "cpu_us_per_record": cpu / args.records * 1e6,
                "app_cpu_us_per_call_flood": ours_cpu_us,
                "costs": costs,
                "root_records_per_s": args.records / root_total,
                "root_app_us_per_call_flood": root_loop / args.records * 1e6,
                "dropped": sum(s.dropped_buffer_full + s.dropped_closed + s.dropped_too_large for s in (stats, root_stats)),
            }
        )
    )


if __name__ == "__main__":
    main()
