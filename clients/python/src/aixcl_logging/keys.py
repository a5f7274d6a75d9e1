"""CurveZMQ client keys, in the layout of a client's folder keys/clients/<name>/ of `./aixcl keys` (the TypeScript
clients read the same):

    <dir>/broker.pub                           the broker's public key (Z85, 40 characters)
    <dir>/clients/<name>.pub, <name>.secret    one key pair per client; secrets mode 0600, refused when
                                               group or others can read them
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from zmq.utils import z85


class KeyFileError(Exception):
    """A key file that cannot be used, naming the file and what to do."""

    def __init__(self, file: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{file}: {reason}")
        self.file = str(file)


@dataclass(frozen=True)
class ClientKeys:
    """Z85 text, as zmq's curve_* socket options take it."""

    server_key: str
    public_key: str
    secret_key: str


def _read_key(file: Path, secret: bool) -> str:
    if not file.is_file():
        raise KeyFileError(file, "missing; create keys with `./aixcl keys`")
    mode = file.stat().st_mode
    if secret and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(file, f"readable by group or others (mode {stat.S_IMODE(mode):o}); run chmod 600 on it")
    key = file.read_text(encoding="ascii", errors="replace").strip()
    try:
        valid = len(key) == 40 and len(z85.decode(key)) == 32
    except (ValueError, KeyError, UnicodeEncodeError):
        valid = False
    if not valid:
        raise KeyFileError(file, "not a 40-character Z85 CURVE key")
    return key


def load_client_keys(directory: str | os.PathLike[str], name: str) -> ClientKeys:
    root = Path(directory)
    return ClientKeys(
        server_key=_read_key(root / "broker.pub", secret=False),
        public_key=_read_key(root / "clients" / f"{name}.pub", secret=False),
        secret_key=_read_key(root / "clients" / f"{name}.secret", secret=True),
    )


def load_client_key_files(broker_key_file: str | os.PathLike[str], public_key_file: str | os.PathLike[str], secret_key_file: str | os.PathLike[str]) -> ClientKeys:
    """A key pair and the broker's key from files anywhere (a secrets mount), checked as in a keys folder."""
    return ClientKeys(
        server_key=_read_key(Path(broker_key_file), secret=False),
        public_key=_read_key(Path(public_key_file), secret=False),
        secret_key=_read_key(Path(secret_key_file), secret=True),
    )


def client_keys_from_env(env: Mapping[str, str] = os.environ) -> ClientKeys | None:
    """MESSAGE_BUS_KEYS_DIR holding broker.pub turns CURVE on; MESSAGE_BUS_CLIENT_NAME picks the key pair.

    None means plaintext. A keys folder that exists but cannot be read is an error, not plaintext.
    """
    directory = env.get("MESSAGE_BUS_KEYS_DIR", "")
    if not directory:
        return None
    root = Path(directory)
    try:
        os.listdir(root)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise KeyFileError(root, f"cannot read it ({error.strerror}): it must be readable by the user this process runs as") from error
    if not (root / "broker.pub").is_file():
        return None
    name = env.get("MESSAGE_BUS_CLIENT_NAME", "")
    if not name:
        raise KeyFileError(root, "holds the broker's key, so the bus needs CURVE: set MESSAGE_BUS_CLIENT_NAME to the client whose key pair to use")
    return load_client_keys(root, name)
