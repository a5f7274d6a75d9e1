"""The protocol's cases in spec/wire (read from the checkout, not the installed package), shared with the TypeScript
suites (packages/client-logger/test/spec.test.ts, clients/node/test/spec.test.ts); what they mean: spec/wire/README.md."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from aixcl_logging import fit, records
from aixcl_logging._proto import log_entry_pb2
from aixcl_logging.publisher import BATCH_MAX_BYTES, BATCH_MAX_ENTRIES, BATCH_WINDOW, Route
from aixcl_logging.wire import (
    BATCH_TOPIC_PREFIX,
    HOLD_TOPIC,
    MAX_NAME_LENGTH,
    UNKNOWN_NAME,
    Entry,
    batch_topic,
    encode_log_batch,
    encode_log_entry,
    log_topic,
    sanitize_name,
)

SPEC = Path(__file__).resolve().parents[3] / "spec" / "wire"

AICO_LEVELS = {"unknown": records.UNKNOWN, "debug": records.DEBUG, "info": records.INFO, "warning": records.WARNING, "error": records.ERROR, "critical": records.CRITICAL}


def spec(file: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SPEC / file).read_text(encoding="utf-8"))
    return data


def cases(file: str, key: str = "cases") -> pytest.MarkDecorator:
    return pytest.mark.parametrize("case", spec(file)[key], ids=lambda case: str(case["name"]))


def text(value: str | list[str | dict[str, Any]]) -> str:
    """A spec text: a string, or parts that are strings or one string repeated (for long texts)."""
    if isinstance(value, str):
        return value
    return "".join(part if isinstance(part, str) else part["repeat"] * part["times"] for part in value)


def test_name_bounds() -> None:
    names = spec("names.json")
    assert (MAX_NAME_LENGTH, UNKNOWN_NAME) == (names["max_name_length"], names["unknown_name"])


@cases("names.json")
def test_names(case: dict[str, Any]) -> None:
    assert sanitize_name(case["input"]) == case["output"]


@cases("levels.json", "aico")
def test_aico_levels(case: dict[str, Any]) -> None:
    assert AICO_LEVELS[case["level"]] == case["number"]


@cases("levels.json", "python")
def test_python_levels(case: dict[str, Any]) -> None:
    assert records.aico_level(case["levelno"]) == AICO_LEVELS[case["level"]]


def test_topic_prefixes() -> None:
    topics = spec("topics.json")
    assert (BATCH_TOPIC_PREFIX, HOLD_TOPIC.decode()) == (topics["batch_topic_prefix"], topics["hold_topic"])


@cases("topics.json")
def test_topics(case: dict[str, Any]) -> None:
    subsystem, module = sanitize_name(case["subsystem"]), sanitize_name(case["module"])
    assert (log_topic(subsystem, module), log_topic(subsystem, module, "aico"), batch_topic(subsystem, module)) == (case["aixcl"], case["aico"], case["batch"])


@cases("records.json")
def test_records(case: dict[str, Any]) -> None:
    record = logging.LogRecord("app", logging.INFO, "/srv/app.py", 1, case["record"]["message"], None, None)
    record.__dict__.update(case["record"]["fields"])
    entry = records.entry_from_record(record, record.getMessage(), "s", "m", "logs.s.m")
    got = {"message": entry.message, "trace_id": entry.trace_id, "session_id": entry.session_id, "user_uuid": entry.user_uuid, "extra": entry.extra}
    assert got == case["entry"]


def test_fit_limit_and_marker() -> None:
    fits = spec("fit.json")
    assert fit.MAX_MESSAGE_BYTES == fits["max_message_bytes"]
    assert fit.truncation_marker(1234) == fits["truncation_marker"].replace("{bytes}", "1234")


@cases("fit.json", "payload_limits")
def test_payload_limits(case: dict[str, Any]) -> None:
    assert Route(case["topic"], case["batch_topic"], encode_log_entry, case["max_message_bytes"]).max_payload_bytes == case["max_payload_bytes"]


@cases("fit.json")
def test_fit(case: dict[str, Any]) -> None:
    entry = Entry(
        timestamp_ns=1_763_700_000_000_000_000,
        level=records.INFO,
        subsystem="s",
        module="m",
        topic="logs.s.m",
        message=text(case["entry"]["message"]),
        extra={key: text(value) for key, value in case["entry"]["extra"].items()},
    )
    fitted = fit.fit_entry(entry, encode_log_entry, case["max_payload_bytes"])
    if case["result"] == "dropped":
        assert fitted is None
        return
    assert fitted is not None
    payload, truncated = fitted
    assert (truncated, len(payload)) == (case["result"] == "truncated", case["payload_bytes"])
    sent = log_entry_pb2.LogEntry.FromString(payload)
    assert sent.message == text(case["sent"]["message"])
    assert dict(sent.extra) == {key: text(value) for key, value in case["sent"]["extra"].items()}


def test_batch_limits() -> None:
    assert {"max_entries": BATCH_MAX_ENTRIES, "max_bytes": BATCH_MAX_BYTES, "window_ms": round(BATCH_WINDOW * 1000)} == spec("batch.json")["limits"]


@cases("batch.json", "framing")
def test_batch_framing(case: dict[str, Any]) -> None:
    assert encode_log_batch([bytes.fromhex(entry) for entry in case["entries_hex"]]).hex() == case["batch_hex"]
