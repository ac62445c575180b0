"""CURVE keys: loading them from ``zmq.auth`` certificate files, and making new ones.

A runtime has one key pair (``runtime.curve_secret_key``, a ``.key_secret``
file): its ROUTER serves with it, and its connections to peers present it.
Whom it lets in is the public keys ``runtime.curve_allowed_clients`` lists
(`Access` in ``access.py``, with their roles), checked by pyzmq's ZAP
authenticator. A peer is named by its public key (``peers.server_key``, a
``.key`` file).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Protocol

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from ...errors import ConfigError


@dataclasses.dataclass(frozen=True, slots=True)
class KeyPair:
    """A CURVE key pair, Z85-encoded as ``zmq.auth`` writes it."""

    public: bytes
    secret: bytes


def load_key_pair(path: str | Path, key: str = "runtime.curve_secret_key") -> KeyPair:
    """Read a ``.key_secret`` file.

    Raises:
        ConfigError: the file is missing or holds no secret key; names ``key``.
    """
    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{key}: cannot read the key pair {path}: {error}") from None
    if not secret:
        raise ConfigError(
            f"{key}: {path} holds no secret key; name the .key_secret file "
            "that 'tierd keys generate' wrote"
        )
    return KeyPair(public, secret)


def load_public_key(path: str | Path, key: str = "peers.server_key") -> bytes:
    """Read the public key from a ``.key`` (or ``.key_secret``) file.

    Raises:
        ConfigError: the file is missing or holds no public key; names ``key``.
    """
    try:
        public, _secret = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{key}: cannot read the public key {path}: {error}") from None
    return bytes(public)


def start_authenticator(
    context: zmq.Context[zmq.Socket[bytes]], access: CredentialsProvider
) -> ThreadAuthenticator:
    """Start pyzmq's ZAP authenticator: only the public keys ``access`` lists get in.

    Args:
        context: the context whose sockets the authenticator guards.
        access: asked ``callback(domain, z85_public_key)`` for each handshake.
    """
    authenticator = ThreadAuthenticator(context, log=logging.getLogger("tierd.zap"))
    authenticator.start()
    authenticator.configure_curve_callback(domain="*", credentials_provider=access)
    return authenticator


class CredentialsProvider(Protocol):
    """What pyzmq's authenticator asks about each CURVE client (`Access` is one)."""

    def callback(self, domain: str, public_key: bytes) -> bool:
        """Whether the client with this Z85 public key may connect."""


def serve_with_curve(socket: zmq.Socket[bytes], keys: KeyPair) -> None:
    """Make ``socket`` a CURVE server with this runtime's key pair; call before bind."""
    socket.curve_secretkey = keys.secret
    socket.curve_publickey = keys.public
    socket.curve_server = True


def connect_with_curve(socket: zmq.Socket[bytes], keys: KeyPair, server_public: bytes) -> None:
    """Make ``socket`` a CURVE client of the server ``server_public``; call before connect."""
    socket.curve_secretkey = keys.secret
    socket.curve_publickey = keys.public
    socket.curve_serverkey = server_public


def generate_key_pair(directory: str | Path, name: str = "tierd") -> tuple[Path, Path]:
    """Write a new key pair into ``directory`` (made if missing).

    Returns:
        The paths of the public ``.key`` and the secret ``.key_secret`` files.

    Raises:
        FileExistsError: a key pair of that name is there already.
    """
    directory = Path(directory)
    for suffix in (".key", ".key_secret"):
        if (directory / f"{name}{suffix}").exists():
            raise FileExistsError(f"{directory / (name + suffix)} exists; pick another --name")
    directory.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(str(directory), name)
    Path(secret).chmod(0o600)
    return Path(public), Path(secret)
