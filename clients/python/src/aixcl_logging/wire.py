"""What travels on the bus: topics and AICO's LogEntry, bare or in AICO's AicoMessage envelope.

The same rules as the TypeScript client's (packages/wire/src): names sanitized to [a-z0-9_-], at most 64
characters; topic logs.<subsystem>.<module> ("aixcl"), or logs/<subsystem>/<module>/v1 with the envelope ("aico").
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Literal, cast

from aixcl_logging._proto import log_entry_pb2, message_pb2

WireFormat = Literal["aixcl", "aico"]

#: A subscription nobody publishes on. While any subscriber holds it, handlers hold their entries: a subscriber that
#: is about to leave (the log consumer or the broker stopping) reads what is on its way first.
HOLD_TOPIC = b"aixcl.hold"

LOG_ENTRY_TYPE_URL = "type.googleapis.com/aico.core.LogEntry"
MAX_NAME_LENGTH = 64
UNKNOWN_NAME = "unknown"
_UNSAFE = re.compile(r"[^a-z0-9_-]+")


def sanitize_name(raw: str) -> str:
    """Lower-cases, turns every run of characters outside [a-z0-9_-] into "_" and bounds the length."""
    cleaned = _UNSAFE.sub("_", raw.lower())[:MAX_NAME_LENGTH]
    return UNKNOWN_NAME if cleaned in ("", "_") else cleaned


def log_topic(subsystem: str, module: str, wire_format: WireFormat = "aixcl") -> str:
    """The topic a handler publishes on; subsystem and module must be sanitized already."""
    return f"logs/{subsystem}/{module}/v1" if wire_format == "aico" else f"logs.{subsystem}.{module}"


#: Several entries in one message (proto/aixcl/bus/log_batch.proto), sent only while a subscriber asks for this topic
#: (the log consumer does). Outside logs. and logs/, so no AICO subscriber receives a payload it cannot decode.
BATCH_TOPIC_PREFIX = "aixcl.batch."


def batch_topic(subsystem: str, module: str) -> str:
    """The batch topic of a handler in our wire format; subsystem and module must be sanitized already."""
    return f"{BATCH_TOPIC_PREFIX}{subsystem}.{module}"


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def varint_size(n: int) -> int:
    return len(_varint(n))


def encode_log_batch(payloads: list[bytes]) -> bytes:
    """An aixcl.bus.LogBatch of encoded LogEntries: each is field 1, length-delimited, unchanged."""
    return b"".join(b"\x0a" + _varint(len(p)) + p for p in payloads)


@dataclass(slots=True)
class Entry:
    """An aico.core.LogEntry as plain values: what a handler queues for its publishing thread."""

    timestamp_ns: int
    level: int
    subsystem: str
    module: str
    topic: str
    message: str
    function: str = ""
    file_path: str = ""
    line_number: int = 0
    trace_id: str = ""
    session_id: str = ""
    user_uuid: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)


def encode_log_entry(entry: Entry) -> bytes:
    # Field by field rather than as constructor arguments: a quarter less time per entry with upb (3.0 against 3.9 µs).
    message = log_entry_pb2.LogEntry()
    message.level = cast("log_entry_pb2.LogLevel", entry.level)  # records.aico_level gives only LogLevel's numbers
    message.subsystem = entry.subsystem
    message.module = entry.module
    message.function = entry.function
    message.message = entry.message
    message.topic = entry.topic
    message.file_path = entry.file_path
    message.line_number = entry.line_number
    message.user_uuid = entry.user_uuid
    message.session_id = entry.session_id
    message.trace_id = entry.trace_id
    message.metadata.update(entry.metadata)
    message.extra.update(entry.extra)
    message.timestamp.seconds, message.timestamp.nanos = divmod(entry.timestamp_ns, 1_000_000_000)
    return message.SerializeToString()


def encode_aico_message(entry: Entry) -> bytes:
    """The entry Any-packed into AICO's envelope, as AICO's own producers send it."""
    envelope = message_pb2.AicoMessage()
    meta = envelope.metadata
    meta.message_id = str(uuid.uuid4())
    meta.timestamp.seconds, meta.timestamp.nanos = divmod(entry.timestamp_ns, 1_000_000_000)
    meta.source = entry.subsystem
    meta.message_type = "aico.core.LogEntry"
    meta.version = "v1"
    envelope.any_payload.type_url = LOG_ENTRY_TYPE_URL
    envelope.any_payload.value = encode_log_entry(entry)
    return envelope.SerializeToString()


def encode(entry: Entry, wire_format: WireFormat) -> bytes:
    return encode_aico_message(entry) if wire_format == "aico" else encode_log_entry(entry)
