"""loguru sending through a BusHandler: logger.add(handler). The record's module is loguru's record name (the
Python module that logged, here __main__); loguru hands its bound fields over as one extra= field, "extra" (JSON in
Loki's extra_extra)."""

from loguru import logger

from aixcl_logging import BusHandler

logger.remove()  # loguru's own stderr sink
# The handler's formatter makes the line; loguru's format gives it the bare message (and any traceback, as exc_info).
logger.add(BusHandler("example_loguru"), format="{message}")

logger.bind(order_id=1001).info("order 1001 placed")
try:
    1 / 0
except ZeroDivisionError:
    logger.exception("charging invoice 1001 failed")
