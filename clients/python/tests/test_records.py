import logging
import sys
from pathlib import PurePosixPath

from aixcl_logging.records import WARNING, entry_from_record


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("app.db", logging.WARNING, "/srv/app/db.py", 42, "slow query %s", ("q1",), None, func="fetch")
    rec.__dict__.update(extra)
    return rec


def test_entry_takes_time_level_location_and_logger_name_from_the_record() -> None:
    rec = record()
    entry = entry_from_record(rec, "slow query q1", "api", "db", "logs.api.db")
    assert (entry.level, entry.message, entry.function, entry.file_path, entry.line_number) == (WARNING, "slow query q1", "fetch", "/srv/app/db.py", 42)
    assert (entry.subsystem, entry.module, entry.topic, entry.metadata) == ("api", "db", "logs.api.db", {"logger": "app.db"})
    assert abs(entry.timestamp_ns - rec.created * 1e9) < 1000
    assert entry.extra == {}


def test_an_object_json_cannot_take_is_its_str() -> None:
    # The values JSON can take, and the context fields: spec/wire/records.json (test_spec.py).
    entry = entry_from_record(record(obj=object(), path=PurePosixPath("/srv/app")), "m", "s", "m", "t")
    assert entry.extra["obj"].startswith("<object object")
    assert entry.extra["path"] == "/srv/app"


def test_formatter_attributes_are_not_extra() -> None:
    rec = record()
    logging.Formatter("%(asctime)s %(message)s").format(rec)
    assert entry_from_record(rec, "m", "s", "m", "t").extra == {}


def test_opentelemetry_logging_instrumentation_ids_are_read_and_its_other_attributes_left_out() -> None:
    otel = {"otelTraceID": "4bf92f3577b34da6a3ce929d0e0e4736", "otelSpanID": "00f067aa0ba902b7", "otelServiceName": "api", "otelTraceSampled": True}
    entry = entry_from_record(record(**otel), "m", "s", "m", "t")
    assert (entry.trace_id, entry.extra) == ("4bf92f3577b34da6a3ce929d0e0e4736", {"span_id": "00f067aa0ba902b7"})
    # Outside a span the instrumentation sets "0".
    entry = entry_from_record(record(otelTraceID="0", otelSpanID="0"), "m", "s", "m", "t")
    assert (entry.trace_id, entry.extra) == ("", {})


def test_the_handlers_default_format_appends_the_traceback() -> None:
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = logging.Handler().format(rec)
    assert line.startswith("failed\nTraceback (most recent call last):") and line.endswith("ZeroDivisionError: division by zero")


def test_a_value_whose_str_raises_becomes_a_placeholder_and_the_record_still_goes() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no str for you\nsecond line")

    circular: dict[str, object] = {"name": "loop"}
    circular["self"] = circular
    entry = entry_from_record(record(bad=Unprintable(), nested=[Unprintable()], circular=circular), "m", "s", "m", "t")
    assert (entry.extra["bad"], entry.extra["nested"]) == ("[unserializable: no str for you]", "[unserializable: no str for you]")
    assert entry.extra["circular"] == "{'name': 'loop', 'self': {...}}"
