"""What BusHandler costs: records from one thread into a running broker (a subscriber must drain it).

    python clients/python/bench/handler.py --endpoint tcp://127.0.0.1:5555 [--records 200000] [--paced 5000 --rate 2000]

Prints one JSON object: flat out, records/s until the last record was handed to the socket, process CPU per record
(both threads, and libzmq's), and the application thread's time per log.info call (wall clock, GIL waits included,
and its own CPU); paced at --rate records/s, the median and 99th percentile of single calls, and the median of the
same calls into a logger with only a NullHandler (a call after a pause is slower on any machine). `npm run bench:clients`
runs it beside the TypeScript logger.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections.abc import Callable

from aixcl_logging import BusHandler


def wait(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out: is a broker with a subscriber running at --endpoint?")
        time.sleep(0.0005)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--paced", type=int, default=5_000, help="calls timed one by one")
    parser.add_argument("--rate", type=int, default=2_000, help="records/s of the paced part")
    args = parser.parse_args()

    handler = BusHandler("bench_py", "load", args.endpoint, max_buffered=args.records, max_buffered_bytes=args.records * 1024, close_timeout=10)
    log = logging.getLogger("bench")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    wait(lambda: handler.connected)
    extra = {"path": "/api/orders", "status": 200}

    cpu0, app_cpu0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
    for i in range(args.records):
        log.info("request %d handled", i, extra=extra)
    loop = time.perf_counter() - t0
    app_cpu = time.thread_time() - app_cpu0
    wait(lambda: handler.stats().published >= args.records)
    total = time.perf_counter() - t0
    cpu = time.process_time() - cpu0

    calls = paced(log, args.paced, args.rate, extra)
    handler.close()
    stats = handler.stats()
    # The same paced calls into a logger without a handler: what a call costs on this machine after a pause anyway.
    quiet = logging.getLogger("bench.baseline")
    quiet.propagate = False
    quiet.setLevel(logging.INFO)
    quiet.addHandler(logging.NullHandler())
    baseline = paced(quiet, args.paced, args.rate, extra)
    print(
        json.dumps(
            {
                "client": "python",
                "records": args.records,
                "records_per_s": args.records / total,
                "cpu_us_per_record": cpu / args.records * 1e6,
                "app_us_per_call_flood": loop / args.records * 1e6,
                "app_cpu_us_per_call_flood": app_cpu / args.records * 1e6,
                "app_us_per_call_paced_p50": statistics.median(calls),
                "app_us_per_call_paced_p99": calls[int(len(calls) * 0.99)],
                "baseline_us_per_call_paced_p50": statistics.median(baseline),
                "dropped": stats.dropped_buffer_full + stats.dropped_closed,
            }
        )
    )


if __name__ == "__main__":
    main()
