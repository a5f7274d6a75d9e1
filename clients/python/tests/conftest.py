"""Shared helpers. The tests that need the real stack read its endpoints from the environment, which
test/clients/python.test.ts sets after starting the real broker, log consumer and Loki. Run on their own they
fail, naming that command: a bare `pytest` that passed on skips would say nothing about the bus."""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from aixcl_logging import BusHandler


STACK_COMMAND = "npx vitest run --project main test/clients/python.test.ts"
UNIT_TESTS = "pytest --ignore-glob='tests/test_bus*'"


def stack_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f"{name} is not set: this test needs the real broker, log consumer and Loki. From the repository root, "
            f"`{STACK_COMMAND}` starts them and runs every test here; `{UNIT_TESTS}` runs the ones that need none.",
            pytrace=False,
        )
    return value


# One logfmt pair at the end of a line: ` name=value`, the value bare or quoted with JSON's escapes.
_TRAILING_PAIR = re.compile(r'\s([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)$')


@dataclass
class LokiEntry:
    ts: int
    line: str
    labels: dict[str, str]
    metadata: dict[str, str]

    def _split(self) -> tuple[str, dict[str, str]]:
        """The log consumer puts the fields its `fields` setting sends in the line as logfmt pairs at the end of the
        first line (LOGGING.md, "Which fields are structured metadata"); every trailing pair counts as a field, so
        a message whose first line itself ends in name=value pairs would lose them: these tests log none."""
        first, newline, rest = self.line.partition("\n")
        pairs: dict[str, str] = {}
        while match := _TRAILING_PAIR.search(first):
            value = match.group(2)
            pairs = {match.group(1): json.loads(value) if value.startswith('"') else value, **pairs}
            first = first[: match.start()]
        return first + newline + rest, pairs

    @property
    def message(self) -> str:
        """The message as logged."""
        return self._split()[0]

    @property
    def fields(self) -> dict[str, str]:
        """The fields as LogQL sees them: the line's pairs and the structured metadata, which wins as in Loki."""
        return {**self._split()[1], **self.metadata}


class Loki:
    def __init__(self, url: str) -> None:
        self.url = url

    def query_range(self, logql: str, limit: int = 5000) -> list[LokiEntry]:
        """Entries oldest first; structured metadata apart from labels (categorize-labels)."""
        now = time.time_ns()
        params = urllib.parse.urlencode({"query": logql, "start": now - 3600 * 10**9, "end": now + 10**9, "limit": limit, "direction": "forward"})
        request = urllib.request.Request(f"{self.url}/loki/api/v1/query_range?{params}", headers={"X-Loki-Response-Encoding-Flags": "categorize-labels"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
        entries = [
            LokiEntry(int(value[0]), value[1], stream["stream"], (value[2] if len(value) > 2 else {}).get("structuredMetadata", {}))
            for stream in body["data"]["result"]
            for value in stream["values"]
        ]
        return sorted(entries, key=lambda e: e.ts)

    def wait_for(self, logql: str, count: int, timeout: float = 20.0) -> list[LokiEntry]:
        deadline = time.monotonic() + timeout
        while True:
            entries = self.query_range(logql)
            if len(entries) >= count or time.monotonic() > deadline:
                assert len(entries) >= count, f"{logql}: {len(entries)} of {count} entries in Loki after {timeout} s"
                return entries
            time.sleep(0.25)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def loki() -> Loki:
    return Loki(stack_env("AIXCL_TEST_LOKI_URL"))


@pytest.fixture
def bus_endpoint() -> str:
    """The publisher side of a broker whose log consumer pushes to `loki`."""
    return stack_env("AIXCL_TEST_PUB_ENDPOINT")


@pytest.fixture
def make_logger(request: pytest.FixtureRequest) -> Iterator[Callable[..., tuple[logging.Logger, BusHandler]]]:
    """A fresh logger with only a BusHandler; both are closed after the test."""
    made: list[tuple[logging.Logger, BusHandler]] = []

    def make(subsystem: str, module: str = "main", **options: object) -> tuple[logging.Logger, BusHandler]:
        handler = BusHandler(subsystem, module, **options)  # type: ignore[arg-type]
        logger = logging.getLogger(f"test.{request.node.name}.{len(made)}")
        logger.propagate = False
        logger.setLevel(1)
        logger.addHandler(handler)
        made.append((logger, handler))
        return logger, handler

    yield make
    for logger, handler in made:
        logger.removeHandler(handler)
        handler.close()
