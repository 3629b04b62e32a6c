"""Tamper with a log's stored status index the way an operator with the database could (tests only)."""

import sqlite3

from tlogcore.statusindex_nodes import Leaf
from tlogcore.statusindex_pages import decode_page, encode_page, page_id_from_bytes
from tlogcore.statusrecord import new_record, parse_record


def drop_stored_revocations(db: sqlite3.Connection, document: bytes) -> int:
    """Rewrite the document's leaf in every stored page of every version: its record lists its issues and no
    revocation. Returns how many rows were changed (the caller commits)."""
    changed = 0
    for page_bytes, version, data in db.execute("SELECT page, version, data FROM status_page").fetchall():
        page = decode_page(page_id_from_bytes(page_bytes)[0], data)
        for position, node in page.items():
            if isinstance(node, Leaf) and node.key == document:
                issued = list(parse_record(node.record).issued)
                page[position] = Leaf(document, new_record(issued).to_bytes())
                fake = encode_page(page)
                db.execute(
                    "UPDATE status_page SET data = ? WHERE page = ? AND version = ?", (fake, page_bytes, version)
                )
                changed += 1
    return changed
