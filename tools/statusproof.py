"""`tlog verify` online: the log's status index proof, checked against the trusted checkpoint (docs/status-proofs.md
§9 "What tlog verify, the page and the monitor check").

1. The `index-root` statement is included at its entry p in the trusted checkpoint, is signed by one of the log's
   registry keys, names this log, and covers N <= p entries; its root is the one the proof is for.
2. The status proof verifies for SHA-256(document): the record lists ALL the entries in [0, N) that name the
   document (presence), or there is none (absence).
3. The gap [N, size of the checkpoint): the entries after the index root, read from the log's tiles and
   authenticated against the checkpoint (at most MAX_GAP of them). A longer gap is not read, and then nothing is
   proven: any index root the log ever logged verifies, so a proxy could answer with an early one and leave out a
   revocation logged after it (`ProvenStatus.complete`).
The caller then requires every listed entry (and every gap entry naming the document) to be among the statements
it verified, with the listed kind: a log (or a proxy) that leaves a revocation out is caught here.

Under a `tlog-index-root/v2` statement the same holds for the keys that signed the document's statements (§12):
each key's record in the key index is proven against the statement's `keys` root, the gap's `issuer-add` and
`issuer-retire` entries naming it are added, and the caller requires the retirements and registration it was
shown to be exactly those: a stolen-key report left out is caught too.
"""

from dataclasses import dataclass

from logserver import api
from logserver.client import LogClient
from tlogcore import tileauth
from tlogcore.checkpoint import Checkpoint
from tlogcore.errors import MalformedError, ProofError
from tlogcore.indexroot import IndexRoot, is_index_root, parse_index_root
from tlogcore.keystatus import RegistryItem, verify_key_status
from tlogcore.logkey import is_log_key
from tlogcore.merkle import leaf_hash, verify_inclusion
from tlogcore.statement import DOCUMENT_KINDS, ISSUE, ISSUER_ADD, REGISTRY_KINDS, parse_statement
from tlogcore.statusindex import verify_status
from tlogcore.statusrecord import parse_record
from tlogcore.tiles import TILE_WIDTH

MAX_GAP = 1024  # entries after the index root a verifier reads itself (four entry tiles)


class LeftOut(ProofError):
    """An entry the log's own index lists, or the gap holds, that its answer lacks: tampered, unless it was logged
    between the answer and the checkpoint the verifier fetched after it (a busy, honest log), so `tlog verify`
    asks once more before it says so."""


@dataclass(frozen=True)
class KeyEntries:
    """The entries that add and retire one key, complete up to the `ProvenStatus`'s `checked_to`."""

    added: tuple[int, ...]
    retired: tuple[int, ...]


@dataclass(frozen=True)
class ProvenStatus:
    """What the index proved: the entries naming the document, complete up to `checked_to`."""

    size: int  # N: the index covers [0, N)
    index_root_entry: int  # p
    time: int  # when the log computed the root
    issued: tuple[int, ...]  # from the record and the gap
    revoked: tuple[int, ...]
    checked_to: int  # the gap was read up to here (the checkpoint's size), or N when it was too long to read
    checkpoint_size: int  # the trusted checkpoint's: what "proven" must reach
    keys: dict[str, KeyEntries] | None = None  # the served keys' records (§12); None under a v1 index root
    gap_registry: tuple[RegistryItem, ...] = ()  # the issuer-add and issuer-retire entries read in the gap

    @property
    def listed(self) -> set[int]:
        return {*self.issued, *self.revoked}

    @property
    def complete(self) -> bool:
        """Every entry of the trusted checkpoint is covered: by the index, or read one by one after it."""
        return self.checked_to >= self.checkpoint_size

    def words(self) -> str:
        if not self.complete:
            unread = self.checkpoint_size - self.size
            return (
                f"the log's word, not proven: its status index covers entries 0-{self.size - 1} only (index root "
                f"logged in entry {self.index_root_entry}), and the {unread:,} entries after it are more than the "
                f"{MAX_GAP:,} tlog verify reads itself"
            )
        gap = f"and entries {self.size}-{self.checked_to - 1} read one by one" if self.checked_to > self.size else ""
        return (
            f"proven by the log's status index (all entries 0-{self.size - 1} about this document, index root "
            f"signed and logged in entry {self.index_root_entry}{', ' + gap if gap else ''})"
        )


async def prove_status(
    client: LogClient,
    document: bytes,
    served: api.StatusIndexProof,
    current: Checkpoint,
    registry_keys: frozenset[str],
) -> ProvenStatus:
    """Steps 1-3; ProofError or MalformedError (the answer is tampered) if anything does not hold."""
    entry = served.index_root.index
    if entry >= current.size:
        raise ProofError(f"the index root's entry {entry} is not in the trusted checkpoint (size {current.size})")
    raw = served.index_root.statement
    verify_inclusion(leaf_hash(raw), entry, current.size, (await client.inclusion_proof(entry, current.size)).proof,
                     current.root)  # fmt: skip
    statement = parse_index_root(raw)
    if statement.signer not in registry_keys:
        raise ProofError("the index root is not signed by the log's registry key")
    if statement.origin != current.origin or statement.size > entry:
        raise ProofError(f"the index root in entry {entry} is for another log or covers entries after itself")
    if (statement.size, statement.root) != (served.size, served.root):
        raise ProofError("the status proof is not for the root the logged index-root states")
    record = parse_record(served.record) if served.record is not None else None
    verify_status(document, record, served.proof, statement.root)
    issued, revoked = (list(record.issued), list(record.revoked)) if record is not None else ([], [])
    keys = _proven_keys(served, statement)
    checked_to, gap_registry = statement.size, []
    if current.size - statement.size <= MAX_GAP:
        for index, kind, subject in await _gap(client, statement.size, current):
            if subject == document:
                (issued if kind == ISSUE else revoked).append(index)
            elif isinstance(subject, str):  # kept under a v1 root too: a report read here is never ignored
                gap_registry.append((index, kind, subject))
                if keys is not None and subject in keys:
                    added, retired = keys[subject]
                    (added if kind == ISSUER_ADD else retired).append(index)
        checked_to = current.size
    proven_keys = None if keys is None else {k: KeyEntries(tuple(a), tuple(r)) for k, (a, r) in keys.items()}
    return ProvenStatus(
        statement.size, entry, statement.time, tuple(issued), tuple(revoked), checked_to, current.size, proven_keys,
        tuple(gap_registry),
    )  # fmt: skip


def _proven_keys(served: api.StatusIndexProof, statement: IndexRoot) -> dict[str, tuple[list[int], list[int]]] | None:
    """Each served key's (added, retired) entries below the statement's size, proven against its key index root;
    None under a v1 statement, which states no key index."""
    if statement.keys is None:
        return None
    found: dict[str, tuple[list[int], list[int]]] = {}
    for item in served.keys:
        record = parse_record(item.record) if item.record is not None else None
        verify_key_status(item.key, record, item.proof, statement.keys)
        found[item.key] = (list(record.issued), list(record.revoked)) if record is not None else ([], [])
    return found


async def _gap(client: LogClient, start: int, current: Checkpoint) -> list[tuple[int, str, bytes | str | None]]:
    """(index, kind, document or key) of the document and registry statements in [start, size), read from tiles
    authenticated against the checkpoint."""
    if start >= current.size:
        return []
    view = tileauth.TreeView(current.size, current.root)
    tiles = tileauth.level0_tiles(start, current.size, current.size)
    bodies = {}
    for tile in view.missing(tiles):
        bodies[tile.path] = await _tile(client, tile.path)
    found: list[tuple[int, str, bytes | str | None]] = []
    try:
        view.add(bodies)
        bundles = [(tile, view.entries(tile, await _tile(client, tileauth.bundle_of(tile).path))) for tile in tiles]
    except tileauth.TreeMismatch as exc:
        raise ProofError(f"the log's tiles do not match its checkpoint: {exc}") from None
    for tile, entries in bundles:
        first = tile.index * TILE_WIDTH
        for offset, data in enumerate(entries):
            if first + offset < start or is_index_root(data) or is_log_key(data):
                continue  # an index root or a log-key rotation names no document
            statement = parse_statement(data, check_signature=False)  # only its kind and subject matter here
            if statement.kind in DOCUMENT_KINDS:
                found.append((first + offset, statement.kind, statement.document))
            elif statement.kind in REGISTRY_KINDS:
                found.append((first + offset, statement.kind, statement.issuer))
    return found


async def _tile(client: LogClient, path: str) -> bytes:
    body = await client.tile(path)
    if body is None:
        raise MalformedError(f"the log does not serve {path}")
    return body
