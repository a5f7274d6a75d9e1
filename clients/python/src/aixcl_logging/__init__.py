"""Publish Python logging records on the aixcl-logging message bus.

    import logging
    from aixcl_logging import BusHandler

    logging.getLogger().addHandler(BusHandler("my_service", "main"))
"""

from aixcl_logging.handler import BusHandler, default_endpoint
from aixcl_logging.keys import ClientKeys, KeyFileError, client_keys_from_env, load_client_keys
from aixcl_logging.publisher import Stats
from aixcl_logging.records import aico_level
from aixcl_logging.wire import HOLD_TOPIC, WireFormat

__all__ = [
    "HOLD_TOPIC",
    "BusHandler",
    "ClientKeys",
    "KeyFileError",
    "Stats",
    "WireFormat",
    "aico_level",
    "client_keys_from_env",
    "default_endpoint",
    "load_client_keys",
]
