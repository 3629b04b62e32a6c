"""Paper documents for `tlog submit --fields`: one JSON object per document, or CSV `field:` columns
(tools/hashing.py), each made into salted paper fields (tlogcore/paperfields.py) whose hash is what is logged.

A JSON input is either the fields themselves, in the order they are printed, or the fields with a ref:

    {"ឈ្មោះ": "សុខ ដារា", "Name": "Sok Dara", "Degree": "Bachelor of Law", "Date": "2026-07-01"}
    {"fields": {"Name": "Sok Dara", "Date": "2026-07-01"}, "ref": "Diploma 2026/17"}

The salt is derived, not drawn: the first 16 bytes of SHA-256 of the issuer's Ed25519 signature over
"tlog-paper-salt/v1\\n" and the fields (with a zero salt). Ed25519 is deterministic, so a re-run finds the same
document hash (and the log's idempotence and the state file work as for files), while nobody without the issuer's
key can compute the salt, so the logged hash does not reveal the fields. The domain line keeps these signatures
apart from statements ("tlog-statement/v1") and checkpoints.
"""

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from tlogcore.errors import MalformedError
from tlogcore.keys import Ed25519Signer
from tlogcore.paperfields import SALT_SIZE, PaperFields
from tools.hashing import Item, SaltFor, expand

SALT_DOMAIN = b"tlog-paper-salt/v1\n"


def salt_deriver(signer: Ed25519Signer) -> SaltFor:
    def salt_for(fields: tuple[tuple[str, str], ...]) -> bytes:
        body = PaperFields(fields, bytes(SALT_SIZE)).body()
        return hashlib.sha256(signer.sign(SALT_DOMAIN + body)).digest()[:SALT_SIZE]

    return salt_for


def _fields_of(data: object) -> tuple[tuple[tuple[str, str], ...], str | None]:
    ref = None
    if isinstance(data, dict) and set(data) <= {"fields", "ref"} and isinstance(data.get("fields"), dict):
        ref = data.get("ref")
        if ref is not None and not isinstance(ref, str):
            raise MalformedError('"ref" must be a string')
        data = data["fields"]
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise MalformedError('want a JSON object of "field name": "value" strings')
    return tuple(data.items()), ref


def json_items(paths: Iterable[Path], salt_for: SaltFor) -> list[Item]:
    """One paper document per JSON file (directories are walked for *.json files)."""
    items = []
    for path, rel in expand(paths):
        if path.suffix != ".json":
            continue
        try:
            fields, ref = _fields_of(json.loads(path.read_text(encoding="utf-8")))
            paper = PaperFields(fields, salt_for(fields))
        except (ValueError, MalformedError) as exc:
            raise MalformedError(f"{path}: {exc}; fix the file (see docs/printed-code.md)") from exc
        items.append(Item(paper.document, path.name, path, ref, rel=rel, paper=paper))
    return items
