"""The package as a package index would take it: scripts/python.sh installs the wheel it built from the sdist, and
both carry what a user's pip needs (metadata, the changelog, the .proto files the code is generated from)."""

from __future__ import annotations

import json
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

DIST = metadata.distribution("aixcl-logging")


def installed_from() -> Path:
    text = DIST.read_text("direct_url.json")
    if text is None:
        pytest.fail("aixcl-logging was not installed by pip from a file: run scripts/python.sh, which installs the wheel it builds")
    return Path(unquote(urlparse(json.loads(text)["url"]).path))


def test_the_installed_package_is_the_wheel_not_the_source_tree() -> None:
    wheel = installed_from()
    assert wheel.suffix == ".whl", f"installed from {wheel}, not a wheel"
    assert wheel.is_file()


def test_the_metadata_is_complete() -> None:
    meta = DIST.metadata
    assert meta["Name"] == "aixcl-logging"
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["Description-Content-Type"] == "text/markdown"
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert set(urls) == {"Homepage", "Documentation", "Changelog", "Issues"}
    assert all(u.startswith("https://") for u in urls.values())
    classifiers = meta.get_all("Classifier") or []
    assert {"Typing :: Typed", "Topic :: System :: Logging", "Programming Language :: Python :: 3.11"} <= set(classifiers)
    assert {r.split(">")[0].split("<")[0] for r in DIST.requires or []} == {"pyzmq", "protobuf"}


def test_the_sdist_beside_the_wheel_carries_the_changelog_the_licence_and_the_proto_files() -> None:
    sdists = list(installed_from().parent.glob("aixcl_logging-*.tar.gz"))
    assert len(sdists) == 1, f"expected one sdist beside the wheel, found {sdists}"
    with tarfile.open(sdists[0]) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    assert {"PKG-INFO", "pyproject.toml", "hatch_build.py", "README.md", "CHANGELOG.md", "LICENSE"} <= names
    assert {"proto/aico/core/log_entry.proto", "proto/aico/core/message.proto"} <= names
    assert not any(n.startswith("tests/") and n.endswith(".pyc") for n in names)


def test_the_wheel_carries_the_generated_code_py_typed_and_the_licence() -> None:
    with zipfile.ZipFile(installed_from()) as wheel:
        names = set(wheel.namelist())
    assert {"aixcl_logging/py.typed", "aixcl_logging/LICENSE"} <= names
    assert {f"aixcl_logging/_proto/{m}_pb2{ext}" for m in ("log_entry", "message") for ext in (".py", ".pyi")} <= names
