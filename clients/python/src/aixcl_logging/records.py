"""From a logging.LogRecord to an Entry: levels, fields and extras. Pure functions, no sockets."""

from __future__ import annotations

import json
import logging
from typing import Any

from aixcl_logging.wire import Entry

#: aico.core.LogLevel
UNKNOWN, DEBUG, INFO, WARNING, ERROR, CRITICAL = 0, 10, 20, 30, 40, 50


def aico_level(levelno: int) -> int:
    """Python's levels are AICO's numbers; a custom level becomes the nearest one at or below it (below DEBUG: DEBUG)."""
    for level in (CRITICAL, ERROR, WARNING, INFO):
        if levelno >= level:
            return level
    return DEBUG


#: Attributes every LogRecord has (3.12 added taskName), plus those Formatter.format sets: none of them is `extra=`.
STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}

#: `extra=` keys that fill the LogEntry's own fields (the Node transports read the same names).
CONTEXT_FIELDS = frozenset({"trace_id", "session_id", "user_uuid"})

#: Set by OpenTelemetry's logging instrumentation (opentelemetry-instrumentation-logging); "0" means no span.
OTEL_TRACE_ID, OTEL_SPAN_ID = "otelTraceID", "otelSpanID"
OTEL_ATTRIBUTES = frozenset({OTEL_TRACE_ID, OTEL_SPAN_ID, "otelServiceName", "otelTraceSampled"})


def unserializable(error: BaseException) -> str:
    """What stands for a value that cannot be written as text, with the reason (the first line of the error)."""
    try:
        reason = str(error).split("\n", 1)[0] or type(error).__name__
    except Exception:
        reason = type(error).__name__
    return f"[unserializable: {reason}]"


def text(value: Any) -> str:
    """Strings as they are; numbers, booleans, None, lists and dicts as compact JSON, as the TypeScript logger writes
    them (spec/wire/records.json); any other object as str() (a UUID, a Path, a datetime read best that way). A value
    whose str() or repr() raises becomes a placeholder saying why: the record still goes, and emit() does not fail."""
    if isinstance(value, str):
        return value
    if type(value) is int:
        return str(value)  # what JSON gives, at a fraction of json.dumps' cost
    try:
        if value is None or isinstance(value, (int, float, bool, list, tuple, dict)):
            try:
                return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
            except (TypeError, ValueError):
                pass  # circular: str() below marks the cycle
        return str(value)
    except Exception as error:
        return unserializable(error)


#: Values text() turns into the same string whenever it is called: the publisher's thread converts them later. Any
#: other value (a dict, a list, an object) is converted at call time, as the application may change it afterwards.
_IMMUTABLE = frozenset({str, int, float, bool})

#: What an entry takes beside its message and extra texts, about: the other fields (the file's path, the topic, the
#: time, the logger's name).
CAPTURED_OVERHEAD = 128

#: A record as at call time, everything an Entry needs: created, levelno, funcName, pathname, lineno, name, the
#: formatted message, and the `extra=` and OpenTelemetry attributes (name, value), immutable values as they are; last,
#: about how many bytes it will take encoded (its texts' lengths and CAPTURED_OVERHEAD), which bounds what waits to be
#: encoded.
Captured = tuple[float, int, str, str, int, str, str, list[tuple[str, Any]], int]


def capture(record: logging.LogRecord, message: str) -> Captured:
    """What the application's thread keeps of a record: cheap (no text conversion of plain values, no Entry), and
    holding neither the record nor its traceback's frames. `message` is the formatted record."""
    attributes = record.__dict__
    # A set difference and the few names left, not a test of each of the record's twenty-odd attributes; sorted, so
    # that an entry's fields do not come in an order that changes with each process' string hashing.
    fields = [(key, value if type(value) in _IMMUTABLE else text(value)) for key in sorted(attributes.keys() - STANDARD_ATTRIBUTES) if (value := attributes[key]) is not None]
    size = CAPTURED_OVERHEAD + len(message) + sum([len(value) for _, value in fields if type(value) is str])
    return (record.created, record.levelno, record.funcName, record.pathname, record.lineno, record.name, message, fields, size)


def entry_from_captured(captured: Captured, subsystem: str, module: str, topic: str) -> Entry:
    created, levelno, function, path, line, logger, message, fields, _ = captured
    entry = Entry(
        timestamp_ns=round(created * 1_000_000) * 1000,
        level=aico_level(levelno),
        subsystem=subsystem,
        module=module,
        topic=topic,
        message=message,
        function=function or "",
        file_path=path or "",
        line_number=line or 0,
        metadata={"logger": logger},
    )
    otel_trace = otel_span = None
    for key, value in fields:
        if key in OTEL_ATTRIBUTES:
            if key == OTEL_TRACE_ID:
                otel_trace = value
            elif key == OTEL_SPAN_ID:
                otel_span = value
        elif key in CONTEXT_FIELDS:
            setattr(entry, key, text(value))
        else:
            entry.extra[key] = text(value)
    if not entry.trace_id and otel_trace and otel_trace != "0":
        entry.trace_id = str(otel_trace)
    if "span_id" not in entry.extra and otel_span and otel_span != "0":
        entry.extra["span_id"] = str(otel_span)
    return entry


def entry_from_record(record: logging.LogRecord, message: str, subsystem: str, module: str, topic: str) -> Entry:
    """`message` is the formatted record (Handler.format: the message, then any traceback and stack)."""
    return entry_from_captured(capture(record, message), subsystem, module, topic)
