"""One BusHandler on the root logger, configured by logging.config.dictConfig: each record's module is its logger's
name. The endpoint and CURVE keys come from the environment here (MESSAGE_BUS_HOST, MESSAGE_BUS_PUB_PORT,
MESSAGE_BUS_KEYS_DIR, MESSAGE_BUS_CLIENT_NAME); "endpoint", "keys_dir" and "client_name" can be given in the dict."""

import logging
import logging.config

logging.config.dictConfig(
    {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"bus": {"class": "aixcl_logging.BusHandler", "subsystem": "example_dictconfig"}},
        "root": {"level": "INFO", "handlers": ["bus"]},
    }
)

logging.getLogger("shop.orders").info("order 1001 placed", extra={"order_id": 1001})
billing = logging.getLogger("shop.billing")
billing.warning("invoice 1001 overdue")
try:
    1 / 0
except ZeroDivisionError:
    billing.exception("charging invoice 1001 failed")
# logging.shutdown(), which Python runs at exit, sends what is still queued.
