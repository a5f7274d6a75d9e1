"""The package ships py.typed: mypy --strict and ruff (configured in pyproject.toml) pass on its sources."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [["mypy", "src"], ["ruff", "check", "--no-cache", "src"]], ids=["mypy", "ruff"])
def test_the_package_passes(command: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", *command], cwd=PACKAGE, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(command)} in {PACKAGE} found:\n{result.stdout}{result.stderr}"
