"""structlog through the standard library: structlog builds the event, logging's BusHandler sends it. The event is
the line; the other keys become extra= fields (trace_id fills the entry's own field)."""

import logging

import structlog

from aixcl_logging import BusHandler

logging.basicConfig(level=logging.INFO, handlers=[BusHandler("example_structlog")])
structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.filter_by_level,
        structlog.processors.format_exc_info,
        structlog.stdlib.render_to_log_kwargs,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)

log = structlog.get_logger("shop.checkout")
structlog.contextvars.bind_contextvars(trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
log.info("checkout started", cart_id=42)
log.warning("coupon rejected", cart_id=42, coupon="SPRING")
