"""What `tlog submit` logs: documents hashed locally (they never leave the machine), or precomputed hashes.

Inputs are files, directories (walked recursively, in name order; hidden files and the tool's own outputs
are skipped) and CSV files of precomputed hashes, with a header naming the columns:

    sha256,name,ref                                   name and ref are optional columns
    9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08,diploma-17,Diploma 2026/17

Paper documents (tlogcore/paperfields.py) come as CSV rows with `field:` columns instead of sha256, each row one
paper, or (tools/paperinput.py) as one JSON object per document:

    name,ref,field:Name,field:ឈ្មោះ,field:Date
    sok-dara,Diploma 2026/17,Sok Dara,សុខ ដារា,2026-07-01

Each item carries `rel`, the relative name its outputs take under --out: a file named on the command line keeps
its name, a file found in a directory its path below that directory, so the outputs mirror the input tree.

Pragmatic exception to "only cli.py reads files": hashing a file and listing a directory are what this
module is for; it reads, never writes.
"""

import csv
import hashlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tlogcore.encoding import parse_hash_hex
from tlogcore.errors import MalformedError
from tlogcore.paperfields import PaperFields

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
    rel: str = ""  # output name under --out (default: name)
    paper: PaperFields | None = None  # a paper document: sha256 is the hash of these fields

    @property
    def output_name(self) -> str:
        return self.rel or self.name

    @property
    def shown(self) -> str:
        """How messages name this document: its path, or its name in the CSV."""
        return str(self.path) if self.path is not None else self.name


def sha256_file(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.digest()


def is_output(path: Path) -> bool:
    return path.name.startswith(".") or path.name.endswith(OUTPUT_SUFFIXES)


def expand(paths: Iterable[Path]) -> list[tuple[Path, str]]:
    """(file, relative output name): files named directly, then each directory's files, recursively, in a stable
    order; a directory's files are named by their path below it."""
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                (p, p.relative_to(path).as_posix())
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not is_output(p)
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            found.append((path, path.name))
    return found


def file_items(paths: Iterable[Path]) -> list[Item]:
    return [Item(sha256_file(p), p.name, p, rel=rel) for p, rel in expand(paths)]


FIELD_PREFIX = "field:"


def parse_csv(text: str, where: str = "CSV", salt_for: "SaltFor | None" = None) -> list[Item]:
    """Rows of precomputed hashes, or of paper fields (`field:` columns; see the module doc). Strict: a bad row
    is an error naming its line."""
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    fields = [c for c in columns if c.startswith(FIELD_PREFIX)]
    if ("sha256" in columns) == bool(fields):
        raise MalformedError(f"{where}: the first line must be a header with a sha256 column, or field: columns")
    if fields and salt_for is None:
        raise MalformedError(f"{where}: field: columns are paper documents; give --fields")
    items: list[Item] = []
    for row in reader:
        try:
            items.append(_csv_item(row, fields, salt_for))
        except MalformedError as exc:
            raise MalformedError(f"{where} line {reader.line_num}: {exc}") from exc
    return items


SaltFor = Callable[[tuple[tuple[str, str], ...]], bytes]


def _csv_item(row: dict[str, str], fields: list[str], salt_for: SaltFor | None) -> Item:
    paper = None
    if fields and salt_for is not None:
        pairs = tuple((c[len(FIELD_PREFIX) :], (row.get(c) or "").strip()) for c in fields)
        pairs = tuple((n, v) for n, v in pairs if v)  # an empty cell: the paper has no such field
        paper = PaperFields(pairs, salt_for(pairs))
        digest = paper.document
    else:
        digest = parse_hash_hex((row.get("sha256") or "").strip().lower(), "sha256")
    name = (row.get("name") or "").strip() or digest.hex()
    if "/" in name or name.startswith("."):
        raise MalformedError(f"name {name[:40]!r} must be a plain file name")
    ref = (row.get("ref") or "").strip() or None
    return Item(digest, name, None, ref, paper=paper)


def unique(items: Iterable[Item]) -> list[Item]:
    """Each document once (the first occurrence wins): one issue statement per document per run."""
    seen: set[bytes] = set()
    out = []
    for item in items:
        if item.sha256 not in seen:
            seen.add(item.sha256)
            out.append(item)
    return out
