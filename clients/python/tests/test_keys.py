import os
from pathlib import Path

import pytest
import zmq

from aixcl_logging import KeyFileError, client_keys_from_env, load_client_keys


def write_keys(root: Path, *clients: str) -> None:
    """The layout `./aixcl keys` writes."""
    (root / "clients").mkdir(parents=True)
    public, secret = zmq.curve_keypair()
    (root / "broker.pub").write_bytes(public + b"\n")
    (root / "broker.secret").write_bytes(secret + b"\n")
    for name in clients:
        public, secret = zmq.curve_keypair()
        (root / "clients" / f"{name}.pub").write_bytes(public + b"\n")
        (root / "clients" / f"{name}.secret").write_bytes(secret + b"\n")
        os.chmod(root / "clients" / f"{name}.secret", 0o600)


def test_reads_the_key_pair_the_environment_names(tmp_path: Path) -> None:
    write_keys(tmp_path, "app")
    keys = client_keys_from_env({"MESSAGE_BUS_KEYS_DIR": str(tmp_path), "MESSAGE_BUS_CLIENT_NAME": "app"})
    assert keys is not None
    assert keys.server_key == (tmp_path / "broker.pub").read_text().strip()
    assert keys.public_key == (tmp_path / "clients" / "app.pub").read_text().strip()
    assert len(keys.secret_key) == 40


@pytest.mark.parametrize("env", [{}, {"MESSAGE_BUS_KEYS_DIR": ""}, {"MESSAGE_BUS_KEYS_DIR": "/nonexistent/keys"}])
def test_plaintext_when_no_keys_are_configured(env: dict[str, str]) -> None:
    assert client_keys_from_env(env) is None


def test_plaintext_when_the_folder_holds_no_broker_key(tmp_path: Path) -> None:
    assert client_keys_from_env({"MESSAGE_BUS_KEYS_DIR": str(tmp_path)}) is None


def test_a_keys_folder_with_the_broker_key_needs_a_client_name(tmp_path: Path) -> None:
    write_keys(tmp_path, "app")
    with pytest.raises(KeyFileError, match="set MESSAGE_BUS_CLIENT_NAME"):
        client_keys_from_env({"MESSAGE_BUS_KEYS_DIR": str(tmp_path)})


def test_refuses_a_secret_that_others_can_read(tmp_path: Path) -> None:
    write_keys(tmp_path, "app")
    os.chmod(tmp_path / "clients" / "app.secret", 0o644)
    with pytest.raises(KeyFileError, match=r"app.secret: readable by group or others \(mode 644\); run chmod 600"):
        load_client_keys(tmp_path, "app")


def test_names_a_missing_or_malformed_key_file(tmp_path: Path) -> None:
    write_keys(tmp_path, "app")
    with pytest.raises(KeyFileError, match=r"other.pub: missing; create keys with `./aixcl keys`"):
        load_client_keys(tmp_path, "other")
    (tmp_path / "broker.pub").write_text("not a key\n")
    with pytest.raises(KeyFileError, match="broker.pub: not a 40-character Z85 CURVE key"):
        load_client_keys(tmp_path, "app")
