"""A WSGI app served by gunicorn's pre-forked workers:

    gunicorn --preload --workers 2 gunicorn_app:app

--preload imports this module, and so makes the BusHandler, in gunicorn's master; each worker forked from it gets a
socket and thread of its own, and sends what is still queued when it exits (gunicorn's workers end through
sys.exit, so logging.shutdown() runs)."""

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from aixcl_logging import BusHandler

logging.basicConfig(level=logging.INFO, handlers=[BusHandler("example_gunicorn")])
log = logging.getLogger("shop.api")
log.info("app loaded in pid %d", os.getpid())


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    log.info("GET %s in pid %d", environ["PATH_INFO"], os.getpid())
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]
