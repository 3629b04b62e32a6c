"""What `tlog submit` logs: documents hashed locally (they never leave the machine), or precomputed hashes.

Inputs are files, directories (walked recursively, in name order; hidden files and the tool's own outputs
are skipped) and CSV files of precomputed hashes, with a header naming the columns:

    sha256,name,ref                                   name and ref are optional columns
    9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08,diploma-17,Diploma 2026/17

Pragmatic exception to "only cli.py reads files": hashing a file and listing a directory are what this
module is for; it reads, never writes.
"""

import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tlogcore.encoding import parse_hash_hex
from tlogcore.errors import MalformedError

BUNDLE_SUFFIX = ".tlog-proof"
OUTPUT_SUFFIXES = (BUNDLE_SUFFIX, ".qr.png", ".qr.svg")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Item:
    """One document to log: its SHA-256, a name for its output files, and where it came from."""

    sha256: bytes
    name: str
    path: Path | None = None  # the document itself, when hashed here
    ref: str | None = None  # a per-document ref (CSV column); overrides --ref


def sha256_file(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.digest()


def is_output(path: Path) -> bool:
    return path.name.startswith(".") or path.name.endswith(OUTPUT_SUFFIXES)


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files named directly, then each directory's files, recursively, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not is_output(p)
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            found.append(path)
    return found


def file_items(paths: Iterable[Path]) -> list[Item]:
    return [Item(sha256_file(p), p.name, p) for p in expand(paths)]


def parse_csv(text: str, where: str = "CSV") -> list[Item]:
    """Rows of precomputed hashes (see the module doc). Strict: a bad row is an error naming its line."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "sha256" not in reader.fieldnames:
        raise MalformedError(f"{where}: the first line must be a header with a sha256 column")
    items: list[Item] = []
    for row in reader:
        line = reader.line_num
        try:
            digest = parse_hash_hex((row.get("sha256") or "").strip().lower(), "sha256")
        except MalformedError as exc:
            raise MalformedError(f"{where} line {line}: {exc}") from exc
        name = (row.get("name") or "").strip() or digest.hex()
        if "/" in name or name.startswith("."):
            raise MalformedError(f"{where} line {line}: name {name[:40]!r} must be a plain file name")
        ref = (row.get("ref") or "").strip() or None
        items.append(Item(digest, name, None, ref))
    return items


def unique(items: Iterable[Item]) -> list[Item]:
    """Each document once (the first occurrence wins): one issue statement per document per run."""
    seen: set[bytes] = set()
    out = []
    for item in items:
        if item.sha256 not in seen:
            seen.add(item.sha256)
            out.append(item)
    return out
