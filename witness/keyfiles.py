"""The witness's key files: one per cosignature algorithm, each one line, owner-only (mode 0600), in the data dir.

    witness.key           Ed25519 (type 0x04 cosignatures), Go's `PRIVATE+KEY+<name>+<id>+base64(0x01 || seed)`
    witness-mldsa44.key   ML-DSA-44 (type 0x06), `PRIVATE+KEY+<name>+<id>+base64(0x06 || seed)` (tlogcore.mldsa)

A file is written once, with O_EXCL (an existing key is never overwritten), and fsynced with its directory.
"""

import os
import stat
from collections.abc import Callable
from pathlib import Path

from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.errors import MalformedError
from tlogcore.keys import Ed25519Signer, Signer, format_signer_key, generate_ed25519_seed, parse_signer_key
from tlogcore.mldsa import MLDSA44CosignatureSigner, format_mldsa44_key, generate_mldsa44_seed, parse_mldsa44_key
from witness.config import ALGORITHMS, ED25519, ML_DSA_44

KEY_FILES = {ED25519: "witness.key", ML_DSA_44: "witness-mldsa44.key"}
Clock = Callable[[], float]


class SetupError(Exception):
    """A file the witness needs is missing, unreadable, or not safe to use."""


def write_key_file(path: Path, line: str) -> None:
    """Write a new key with owner-only permissions; O_EXCL so an existing key is never overwritten."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_key_line(path: Path) -> str:
    """The key file's one line, refusing a file that anyone but its owner may read or write."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise SetupError(f"cannot open key file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SetupError(f"key file {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise SetupError(f"key file {path} has mode {mode:04o}, readable by others: run chmod 600 {path}")
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    text = data.decode("ascii", "replace")
    if not text.endswith("\n") or text.count("\n") != 1:
        raise SetupError(f"key file {path}: want one line PRIVATE+KEY+<name>+<id>+<key>")
    return text[:-1]


def parse_key(algorithm: str, line: str, clock: Clock) -> Signer:
    if algorithm == ML_DSA_44:
        return parse_mldsa44_key(line, clock)
    seed_signer = parse_signer_key(line)
    return CosignatureV1Signer(seed_signer.name, seed_signer.seed, clock)


def new_key_line(algorithm: str, name: str, clock: Clock) -> str:
    if algorithm == ML_DSA_44:
        return format_mldsa44_key(MLDSA44CosignatureSigner(name, generate_mldsa44_seed(), clock))
    return format_signer_key(Ed25519Signer(name, generate_ed25519_seed()))


def read_key(data: Path, algorithm: str, clock: Clock) -> Signer:
    path = data / KEY_FILES[algorithm]
    try:
        return parse_key(algorithm, read_key_line(path), clock)
    except MalformedError as exc:
        raise SetupError(f"key file {path}: {exc}") from None


def exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def load_or_create_key(data: Path, name: str, algorithm: str, clock: Clock) -> Signer:
    """The witness's key for one algorithm, made on first use; refused if it was made for another name."""
    path = data / KEY_FILES[algorithm]
    if not exists(path):
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_key_file(path, new_key_line(algorithm, name, clock))
    signer = read_key(data, algorithm, clock)
    if signer.name != name:
        raise SetupError(
            f"key file {path} was made for witness name {signer.name!r} but the config says {name!r}; "
            "the name is part of the key ID, so changing it changes the witness's identity"
        )
    return signer


def load_or_create_keys(data: Path, name: str, algorithms: tuple[str, ...], clock: Clock) -> list[Signer]:
    return [load_or_create_key(data, name, algorithm, clock) for algorithm in algorithms]


def existing_keys(data: Path, clock: Clock) -> list[Signer]:
    """Every key the data directory holds, Ed25519 first; a SetupError when there is none."""
    signers = [read_key(data, a, clock) for a in ALGORITHMS if exists(data / KEY_FILES[a])]
    if not signers:
        raise SetupError(f"{data / KEY_FILES[ED25519]} does not exist: run tlog-witness init --data {data} --name NAME")
    return signers
