"""The log's identity and keys, for `tlog-server` (docs/key-guard.md): keys are made only by `init`, on an empty
database, and every later start must bring exactly the keys the database records."""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import click

from logserver.keyguard import verified_head
from logserver.logkeys import KeyRing, successor_paths
from logserver.storage import LogIdentity, Storage
from tlogcore.errors import TlogError
from tlogcore.keys import (
    Ed25519Signer,
    check_private_key_mode,
    format_signer_key,
    generate_ed25519_seed,
    parse_signer_key,
)

LOG_KEY, REGISTRY_KEY = "log.key", "registry.key"


class UsageError(click.ClickException):
    """One readable line and exit code 1 (click prints 'Error: ...')."""


def write_key(path: Path, signer: Ed25519Signer) -> None:
    """Create a private key file readable by its owner only; never overwrite one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(format_signer_key(signer) + "\n")


def read_key(path: Path) -> Ed25519Signer:
    try:
        check_private_key_mode(path.stat().st_mode, str(path))
        return parse_signer_key(path.read_text().strip())
    except TlogError as exc:
        raise UsageError(f"{path}: {exc}") from exc


@dataclass(frozen=True)
class LogKeys:
    log: Ed25519Signer  # the key the log started with (log.key): its identity
    registry: Ed25519Signer
    successors: tuple[Ed25519Signer, ...] = ()  # log.key.1, log.key.2, …: made by `rotate-key` (logkeys.py)

    @property
    def ring(self) -> KeyRing:
        """All the log's keys; which signs what comes from the log's own rotation entries (Sequencer.load)."""
        return KeyRing(self.log, self.registry.verifier().vkey, self.successors)

    @property
    def identity(self) -> LogIdentity:
        return LogIdentity(self.log.name, self.log.verifier().vkey, self.registry.verifier().vkey)


def read_keys(data: Path) -> LogKeys:
    """The log's keys; `serve` never makes them (docs/key-guard.md: only `init` does, on an empty database)."""
    for name in (LOG_KEY, REGISTRY_KEY):
        if not (data / name).exists():
            raise UsageError(
                f"{data / name} does not exist: for a new log run tlog-server init --data {data} first; "
                "for an existing log, put its keys back (never make new ones for it)"
            )
    log = read_key(data / LOG_KEY)
    successors = []
    for path in successor_paths(data):
        successors.append(read_key(path))
        if successors[-1].name != log.name:
            raise UsageError(f"{path} is a key of {successors[-1].name!r}, not of the log {log.name!r}: remove it")
    return LogKeys(log, read_key(data / REGISTRY_KEY), tuple(successors))


def create_keys(data: Path, origin: str | None) -> LogKeys:
    """New keys for a new log (named after the origin; a random tlog.localhost/... without one)."""
    if (data / LOG_KEY).exists() or (data / REGISTRY_KEY).exists():
        present = LOG_KEY if (data / LOG_KEY).exists() else REGISTRY_KEY
        raise UsageError(f"{data / present} exists without its pair: restore the log's other key into {data}")
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = origin or f"tlog.localhost/{secrets.token_hex(4)}"
    write_key(data / LOG_KEY, Ed25519Signer(name, generate_ed25519_seed()))
    write_key(data / REGISTRY_KEY, Ed25519Signer(f"{name}/registry", generate_ed25519_seed()))
    return read_keys(data)


def check_origin(keys: LogKeys, origin: str | None, data: Path) -> None:
    if origin is not None and origin != keys.log.name:
        raise UsageError(f"config says origin {origin!r} but {data / LOG_KEY} is the key of {keys.log.name!r}")


def describe(identity: LogIdentity) -> str:
    return f"log {identity.origin!r} (log key {identity.log_vkey}, registry key {identity.registry_vkey})"


async def check_identity(storage: Storage, keys: LogKeys, data: Path, where: str) -> None:
    """`serve`: the database must have been claimed by `init` for exactly these keys."""
    stored = await storage.identity()
    if stored is None:
        raise UsageError(f"{where} records no log identity: run tlog-server init --data {data} (same --config) first")
    if stored != keys.identity:
        raise UsageError(
            f"{where} belongs to {describe(stored)}, not to the keys in {data}: start with that log's keys "
            "(docs/key-guard.md)"
        )


async def claim_database(storage: Storage, keys: LogKeys, where: str) -> None:
    """`init`: record these keys as the database's identity, if it has none and holds nothing else's."""
    stored = await storage.identity()
    if stored == keys.identity:
        return
    if stored is not None:
        raise UsageError(f"{where} already belongs to {describe(stored)}: init never changes a log's identity")
    head = await storage.head()
    # A database from before identities were recorded: adopt it only if this key signed its head.
    adoptable = head is not None and verified_head(head.checkpoint, keys.log.name, keys.log.verifier()) is not None
    if not adoptable and not await storage.is_empty():
        raise UsageError(f"{where} holds a log that the key in {LOG_KEY} did not sign: use that log's keys")
    await storage.record_identity(keys.identity)
