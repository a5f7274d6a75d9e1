import logging
import sys

import pytest

from aixcl_logging.records import CRITICAL, DEBUG, ERROR, INFO, WARNING, aico_level, entry_from_record, text


@pytest.mark.parametrize(
    ("levelno", "level"),
    [(10, DEBUG), (20, INFO), (30, WARNING), (40, ERROR), (50, CRITICAL), (25, INFO), (35, WARNING), (55, CRITICAL), (5, DEBUG), (0, DEBUG), (99, CRITICAL)],
)
def test_python_levels_map_to_aico_levels_custom_ones_to_the_nearest_below(levelno: int, level: int) -> None:
    assert aico_level(levelno) == level


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


def test_extra_fields_are_everything_that_is_not_a_standard_attribute() -> None:
    entry = entry_from_record(record(user_id=7, tags=["a", "b"], ratio=0.5, ok=True, note="plain", nothing=None, obj=object()), "m", "s", "m", "t")
    assert entry.extra.keys() == {"user_id", "tags", "ratio", "ok", "note", "obj"}
    assert (entry.extra["user_id"], entry.extra["tags"], entry.extra["ratio"], entry.extra["ok"], entry.extra["note"]) == ("7", '["a", "b"]', "0.5", "true", "plain")
    assert entry.extra["obj"].startswith("<object object")


def test_formatter_attributes_are_not_extra() -> None:
    rec = record()
    logging.Formatter("%(asctime)s %(message)s").format(rec)
    assert entry_from_record(rec, "m", "s", "m", "t").extra == {}


def test_trace_session_and_user_ids_fill_the_entrys_own_fields() -> None:
    entry = entry_from_record(record(trace_id="4bf92f35", session_id="sess-9", user_uuid="5b0c3f0e", span_id="00f067aa"), "m", "s", "m", "t")
    assert (entry.trace_id, entry.session_id, entry.user_uuid, entry.extra) == ("4bf92f35", "sess-9", "5b0c3f0e", {"span_id": "00f067aa"})


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


def test_text_is_json_for_non_strings() -> None:
    assert [text("s"), text(3), text(None), text({"k": "ü"})] == ["s", "3", "null", '{"k": "ü"}']


def test_a_value_whose_str_raises_becomes_a_placeholder_and_the_record_still_goes() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no str for you\nsecond line")

    circular: dict[str, object] = {"name": "loop"}
    circular["self"] = circular
    entry = entry_from_record(record(bad=Unprintable(), nested=[Unprintable()], circular=circular), "m", "s", "m", "t")
    assert (entry.extra["bad"], entry.extra["nested"]) == ("[unserializable: no str for you]", "[unserializable: no str for you]")
    assert entry.extra["circular"] == "{'name': 'loop', 'self': {...}}"
