"""`tlog-server recover`: rebuild a lost or damaged database from a source that proves itself.

The source is a static tiles directory (c2sp.org/tlog-tiles, as `[static] tiles_dir` or `export-tiles` keep it):
its `checkpoint` and its entry bundles. Nothing in it is trusted until it proves itself:

1. the checkpoint must verify with this log's key and name this origin;
2. it must not be behind or beside the newest checkpoint the log key signed (`log.key.signed`, keyguard.py):
   a smaller size, or the same size with another root, is refused; a bigger tree must contain that one (its
   root at the recorded size is the recorded root);
3. every leaf of every entry bundle is hashed, and the tree they make must have the checkpoint's root: so every
   byte written back is covered by the log's own signature.

Only then is it written into an empty database, in one commit: the leaves, every stored hash, the checkpoint as
the head (published, with the cosignatures it carried). The log then starts from exactly the tree it had published.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from logserver.keyguard import RecordFile, SignedRecord, TreeHead, verified_head
from logserver.static_tiles import read_checkpoint_file
from logserver.storage import EntryRecord, Head, Storage
from tlogcore import merkle
from tlogcore.errors import TlogError
from tlogcore.indexroot import is_index_root
from tlogcore.keys import Verifier
from tlogcore.logkey import is_log_key
from tlogcore.note import Note, open_note, parse_note
from tlogcore.statement import REGISTRY_KINDS, parse_statement
from tlogcore.tiles import TILE_WIDTH, decode_entry_bundle, entry_bundle_for


class RecoverError(Exception):
    """The source does not prove itself, or the database is not empty: one line saying which."""


@dataclass(frozen=True)
class Rebuilt:
    head: Head  # log signature only
    published: bytes  # the checkpoint as the source had it, cosignatures included
    entries: list[EntryRecord]
    hashes: list[bytes]  # every stored hash, by stored-hash index


def read_tiles(root: Path, origin: str, verifiers: Sequence[Verifier]) -> Rebuilt:
    """`verifiers`: every key of the log (logkeys.py: a rotated log's checkpoint may carry the new key only)."""
    shown = read_checkpoint_file(root)
    if shown is None:
        raise RecoverError(f"{root / 'checkpoint'} is missing or unreadable")
    signed = verified_head(shown[0], origin, verifiers)
    if signed is None:
        raise RecoverError(f"{root / 'checkpoint'} is not a checkpoint of {origin} signed by its log key")
    datas = _entries(root, signed.size)
    appended = merkle.append_leaves(0, [], [merkle.leaf_hash(d) for d in datas])
    if (appended.root if signed.size else merkle.EMPTY_ROOT) != signed.root:
        raise RecoverError(f"the entry bundles in {root} do not make the tree its signed checkpoint names")
    note = parse_note(shown[0])
    ours = tuple(signature for signature, _ in open_note(shown[0], verifiers).verified)  # both during an overlap
    head = Head(signed.size, signed.root, Note(note.text, ours).to_bytes())
    return Rebuilt(head, shown[0], [_record(i, d) for i, d in enumerate(datas)], list(appended.new_hashes))


def _entries(root: Path, size: int) -> list[bytes]:
    datas: list[bytes] = []
    for first in range(0, size, TILE_WIDTH):
        tile = entry_bundle_for(first, size)
        try:
            datas += decode_entry_bundle((root / tile.path).read_bytes(), tile.width)
        except OSError as exc:
            raise RecoverError(f"{root / tile.path}: {exc.strerror}") from None
        except TlogError as exc:
            raise RecoverError(f"{root / tile.path}: {exc}") from None
    return datas


def _record(index: int, data: bytes) -> EntryRecord:
    if is_index_root(data):  # the status index's root (statusindexer.py): names no document, no registry change
        return EntryRecord(data, merkle.leaf_hash(data), None, False)
    if is_log_key(data):  # a key rotation (logkeys.py): stored among the registry's entries, which load() replays
        return EntryRecord(data, merkle.leaf_hash(data), None, True)
    try:
        statement = parse_statement(data, check_signature=False)  # its bytes are covered by the root already
    except TlogError as exc:
        raise RecoverError(f"entry {index} is not a statement: {exc}") from None
    return EntryRecord(data, merkle.leaf_hash(data), statement.document, statement.kind in REGISTRY_KINDS)


def check_against_record(rebuilt: Rebuilt, record: SignedRecord | None, where: Path) -> None:
    """Rule 2: the rebuilt tree is the newest the key signed, or contains it."""
    newest = record.newest if record is not None else None
    if newest is None:
        return
    size, root = rebuilt.head.size, rebuilt.head.root
    if size < newest.size:
        raise RecoverError(f"the source holds size {size} but the log key signed {newest} ({where}): find a newer copy")
    plan = merkle.root_plan(newest.size)
    at_newest = plan.assemble([rebuilt.hashes[i] for i in plan.stored_indexes])[0] if newest.size else root
    if (size == newest.size and root != newest.root) or (size > newest.size and at_newest != newest.root):
        raise RecoverError(f"the source holds another tree than the {newest} the log key signed ({where})")


async def write_back(storage: Storage, rebuilt: Rebuilt, record_file: RecordFile) -> None:
    if not await storage.is_empty():
        raise RecoverError("the database is not empty: move the damaged one away (keep it as evidence), then recover")
    head = rebuilt.head
    await storage.commit_batch(None, head, rebuilt.entries, 0, rebuilt.hashes, publish=True)
    await storage.set_cosigned(head.size, rebuilt.published)
    record_file.write(SignedRecord(TreeHead(head.size, head.root)))
