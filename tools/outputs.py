"""Where `tlog submit` writes each document's outputs, checked before anything is logged, and the manifest.

With --out DIR the outputs mirror the input tree: `coll/a/d1.pdf` given as `coll` writes
`DIR/a/d1.pdf.tlog-proof` (and `.qr.png`, `.qr.svg`, `.label.svg`, `.label.pdf` beside it). Without --out they go
beside each document. Two documents that would write the same file, or a file already there that is not this
document's bundle from this issuer, stop the run before anything is submitted: nothing is ever overwritten.

The manifest (JSON, or CSV when its name ends in .csv) has one row per document: input, sha256, index, ref, the
output files and the link in the QR code.
"""

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlogcore.bundle import parse_tlog_proof
from tlogcore.errors import MalformedError, TlogError
from tlogcore.statement import parse_statement
from tools.hashing import BUNDLE_SUFFIX, Item

MANIFEST_COLUMNS = ("input", "sha256", "index", "ref", "bundle", "qr_png", "qr_svg", "label_svg", "label_pdf", "link")


@dataclass(frozen=True)
class Outputs:
    bundle: Path

    def beside(self, suffix: str) -> Path:
        return self.bundle.with_name(self.bundle.name[: -len(BUNDLE_SUFFIX)] + suffix)

    @property
    def qr_png(self) -> Path:
        return self.beside(".qr.png")

    @property
    def qr_svg(self) -> Path:
        return self.beside(".qr.svg")

    @property
    def label_svg(self) -> Path:
        return self.beside(".label.svg")

    @property
    def label_pdf(self) -> Path:
        return self.beside(".label.pdf")


def bundle_path(item: Item, out: Path | None) -> Path | None:
    if out is not None:
        return out / (item.output_name + BUNDLE_SUFFIX)
    if item.path is None:
        return None  # a CSV row without --out: logged only
    return item.path.with_name(item.path.name + BUNDLE_SUFFIX)


def plan_outputs(items: list[Item], out: Path | None) -> dict[bytes, Outputs]:
    """Each document's outputs; refuses two documents with one output name."""
    seen: dict[Path, Item] = {}
    for item in items:
        path = bundle_path(item, out)
        if path is None:
            continue
        other = seen.get(path)
        if other is not None:
            raise MalformedError(
                f"{item.shown} and {other.shown} would both write {path}: rename one, or submit them separately"
            )
        seen[path] = item
    return {item.sha256: Outputs(path) for path, item in seen.items()}


def written_index(outputs: Outputs, item: Item, signer_vkey: str) -> int | None:
    """The index in this document's bundle from an earlier run; None if there is none yet. Refuses a file there
    that is anything else (another document's bundle, or not a bundle at all)."""
    path = outputs.bundle
    if not path.exists():
        return None
    try:
        bundle = parse_tlog_proof(path.read_bytes())
        statement = parse_statement(bundle.extra or b"")
    except (OSError, TlogError):
        statement = None
    if statement is None or statement.document != item.sha256 or statement.signer != signer_vkey:
        raise MalformedError(
            f"{path} exists and is not the bundle of {item.shown} by this key: refusing to overwrite it; "
            "move it away or choose another --out"
        )
    return bundle.index


def manifest_bytes(path: Path, rows: list[dict[str, Any]], header: dict[str, str]) -> bytes:
    if path.suffix == ".csv":
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=MANIFEST_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return text.getvalue().encode()
    return (json.dumps({**header, "documents": rows}, indent=1, ensure_ascii=False) + "\n").encode()
