"""The log's storage, behind one Protocol, and its durability contract.

Contract (every implementation, SQLite and PostgreSQL alike):

1. `commit_batch` is atomic and durable: once it returns, the leaves, their
   stored hashes and the new checkpoint are on disk together (an fsync'd
   commit); if it raises, none of them are. A crash at any point leaves either
   the old tree or the new one, never a mix.
2. `commit_batch` is a compare-and-swap on the head (size, root): it fails with
   `HeadMovedError`, writing nothing, unless the stored head is exactly the one
   the caller extended. Two processes on one database can therefore never fork
   the log, and a checkpoint size is never stored twice.
3. Reads see only committed data; leaves and hashes never change once stored.
4. Nothing is deleted (from the log; a SharedQueue's pending rows are not
   part of it).
5. A storage several processes share (PostgreSQL) is also a SharedQueue: a
   process that does not sequence stores submissions with `enqueue` (durable
   once it returns) and the sequencing process drains them; an entry is
   acknowledged only once `find_leaves` finds it in the log.
6. Lookups by leaf hash and by document hash (`find_leaves`, `document_read`)
   see every committed entry at every moment. Their indexes are kept off the
   fsync'd commit (issue 20): `merge_lookups` moves committed leaves into
   sorted lookup tables in the background, up to a watermark stored with them;
   reads use the tables below the watermark and scan the short tail above it,
   in one snapshot. Merging never changes an answer, only its cost.
   A process that knows every leaf from the watermark on (the sequencer, which
   committed them) may ask the tables alone: `lookup_watermark`, then
   `find_merged`, in that order, find every leaf below the watermark read.
   A process that holds the tail's keys (logserver/readtail.py) passes a
   `TailHint` to `leaf_inclusion` and `documents_entries`: the indexes it holds
   for the keys asked and the end of what it holds; the read then scans only
   the rows from that end on, and drops hinted indexes below the watermark.
"""

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:  # leafproof.py imports StorageError from here
    from logserver.leafproof import LeafProof
    from logserver.warmup import WarmReport


class StorageError(Exception):
    """The storage failed (I/O error, disk full, lock timeout); nothing was committed."""


def failure_text(exc: BaseException) -> str:
    """What a database failure says, for a StorageError's message: a timeout's own text is empty (asyncpg's
    statement and pool timeouts), which once left "status index: PostgreSQL: " and nothing after it in the log."""
    if str(exc):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return "no answer within the timeout (the database is overloaded or unreachable)"
    return type(exc).__name__


class HeadMovedError(StorageError):
    """The head is no longer the one this writer extended: another sequencer wrote to this log."""


class IdentityError(StorageError):
    """The database already belongs to another log (another origin or other keys)."""


@dataclass(frozen=True)
class LogIdentity:
    """Who the log is, recorded in its database by `tlog-server init` (docs/key-guard.md)."""

    origin: str
    log_vkey: str
    registry_vkey: str


@dataclass(frozen=True)
class Head:
    size: int
    root: bytes
    checkpoint: bytes  # the signed checkpoint note (log signature only)


class EntryRecord(NamedTuple):
    """One leaf as stored: the statement bytes plus columns derived from them for lookups. A named tuple: one is made
    per entry on the sequencer's path, at a fifth of a frozen dataclass's cost (issue 20)."""

    data: bytes
    leaf_hash: bytes
    document: bytes | None  # SHA-256 of the document, for issue and revoke
    registry: bool  # an issuer-add or issuer-retire statement


class TailHint(NamedTuple):
    """What a process holds of the unmerged tail for one lookup (contract 6, logserver/readtail.py): the indexes of
    the leaves whose keys match, and the end of what it holds. The default holds nothing: scan the whole tail."""

    indexes: tuple[int, ...] = ()
    scan_from: int = 0


NO_TAIL = TailHint()


@dataclass(frozen=True)
class StoredEntry:
    index: int
    data: bytes


def hash_key(digest: bytes) -> int:
    """The indexed prefix of one hash: its first 8 bytes as a signed 64-bit integer (`hash_keys` for many)."""
    return int.from_bytes(digest[:8], "big", signed=True)


def hash_keys(digests: Iterable[bytes]) -> list[int]:
    """The indexed prefix of each hash (its first 8 bytes as a signed 64-bit integer), as both engines store it
    in `leaf_key` and `document_key`: one struct call for them all, not one int.from_bytes each (issue 20)."""
    prefixes = b"".join([digest[:8] for digest in digests])
    return list(struct.unpack(f">{len(prefixes) // 8}q", prefixes))


def lookup_rows(first: int, entries: Sequence[EntryRecord]) -> list[tuple[int, bytes, int, int | None, bool]]:
    """The `leaves` rows of `entries` appended at index `first`: (idx, data, leaf_key, document_key, registry)."""
    leaf_keys = hash_keys([e.leaf_hash for e in entries])
    documented = [e.document for e in entries if e.document]
    document_keys = iter(hash_keys(documented))
    return [
        (first + i, e.data, leaf_keys[i], next(document_keys) if e.document else None, e.registry)
        for i, e in enumerate(entries)
    ]


def named_document(data: bytes) -> bytes | None:
    """The document a stored issue or revoke statement names (its one canonical `document <hex>` line), else None."""
    at = data.find(b"\ndocument ")
    if at < 0:
        return None
    digest = data[at + 10 : at + 74]
    try:
        return bytes.fromhex(digest.decode()) if data[at + 74 : at + 75] == b"\n" else None
    except ValueError:
        return None


class DocumentRead(NamedTuple):
    """A document's entries and the newest published checkpoint (None: none yet), read in one statement."""

    entries: list[StoredEntry]
    published: bytes | None


PUBLISHED_ROW_INDEX = -1  # the index column of the published checkpoint's row beside a document's (no entry's)
# Both engines' SQL: the newest published checkpoint (`latest_published`), and that row beside a document's
# entries (`document_read`), as (PUBLISHED_ROW_INDEX, note).
NEWEST_PUBLISHED = "SELECT published FROM checkpoints WHERE published IS NOT NULL ORDER BY size DESC LIMIT 1"
PUBLISHED_ROW = f"SELECT {PUBLISHED_ROW_INDEX}, published FROM ({NEWEST_PUBLISHED}) AS p"


def document_read(document: bytes, rows: Sequence[tuple[int, bytes]]) -> DocumentRead:
    """The rows of one document's lookup with the published checkpoint's row (at PUBLISHED_ROW_INDEX) among them."""
    published = next((data for index, data in rows if index == PUBLISHED_ROW_INDEX), None)
    entries = by_document([document], [row for row in rows if row[0] != PUBLISHED_ROW_INDEX])[document]
    return DocumentRead(entries, published)


def by_document(documents: Sequence[bytes], rows: Sequence[tuple[int, bytes]]) -> dict[bytes, list[StoredEntry]]:
    """Rows of a lookup by document key (keys may collide: 64 bits) sorted to the documents they really name."""
    found: dict[bytes, list[StoredEntry]] = {d: [] for d in documents}
    for index, data in sorted(rows):
        named = named_document(data)
        if named in found:
            found[named].append(StoredEntry(index, data))
    return found


class Storage(Protocol):
    async def head(self) -> Head | None:
        """The latest committed checkpoint, or None for a log that has never signed one."""

    async def commit_batch(
        self,
        old: Head | None,
        new: Head,
        entries: Sequence[EntryRecord],
        first_hash: int,
        hashes: Sequence[bytes],
        publish: bool,
    ) -> None:
        """Atomically append `entries` at index `old.size`, `hashes` at stored index `first_hash`,
        and make `new` the head, if and only if the head is still `old` (contract 1 and 2).
        With `publish`, the new checkpoint is also the published one (no witnesses to wait for)."""

    async def get_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        """Stored hashes by stored-hash index, in the order asked; KeyError if one is missing."""

    async def get_entries(self, start: int, end: int) -> list[bytes]:
        """Leaves [start, end) byte for byte."""

    async def find_leaves(self, leaf_hashes: Sequence[bytes]) -> dict[bytes, int]:
        """Index of each leaf hash already in the log (absent ones are left out)."""

    async def find_merged(self, leaf_hashes: Sequence[bytes]) -> dict[bytes, int]:
        """`find_leaves` in the lookup table only, without the scan of the unmerged tail (contract 6)."""

    async def lookup_watermark(self) -> int:
        """How many leaves, from index 0, the lookup tables hold (contract 6)."""

    async def document_read(self, document: bytes, tail: TailHint = NO_TAIL) -> DocumentRead:
        """Every issue or revoke statement about `document`, in log order, and the newest published checkpoint
        (`latest_published`), in one statement: a lookup needs both (one snapshot, one statement's cost less)."""

    async def documents_entries(
        self, documents: Sequence[bytes], tail: TailHint = NO_TAIL
    ) -> dict[bytes, list[StoredEntry]]:
        """`document_read`'s entries for many documents in one read (the bulk lookup)."""

    async def leaf_inclusion(self, leaf_hash: bytes, size: int | None, tail: TailHint = NO_TAIL) -> "LeafProof":
        """The head's size, the index of `leaf_hash` and its inclusion proof in the tree of `size` (None: the head),
        in one statement, so one round trip and one snapshot (issue 20; logserver/leafproof.py)."""

    async def inclusion_proof(self, index: int, size: int) -> tuple[bytes, ...]:
        """PATH(index, D[0:size]) (index < size), the tree's upper hashes from memory once read, as `leaf_inclusion`
        keeps them (leafproof.kept_inclusion_proof)."""

    async def warm_reads(self, seconds: float) -> "WarmReport":
        """Read what every proof reads into the page cache, at most `seconds` (logserver/warmup.py)."""

    async def lookup_keys(self, start: int, end: int) -> list[tuple[int, int | None]]:
        """The (leaf key, document key) of leaves [start, end) as stored (`hash_keys`), in index order."""

    async def merge_lookups(self, limit: int) -> int:
        """Index up to `limit` more committed leaves for lookups (contract 6); how many (0: none are waiting)."""

    async def registry_entries(self, start: int = 0) -> list[StoredEntry]:
        """Every registry statement at index `start` or later, in log order."""

    async def checkpoint_at(self, size: int) -> bytes | None:
        """The signed checkpoint of this size, with whatever cosignatures were attached."""

    async def set_cosigned(self, size: int, note: bytes) -> None:
        """Publish the checkpoint of `size` with the cosignatures it got (same text, more signature lines)."""

    async def latest_published(self) -> bytes | None:
        """The newest published checkpoint: with its cosignatures, or as signed when published without."""

    async def acquire_lease(self, owner: str, now: float, ttl: float) -> str | None:
        """Take or renew the sequencer lease; None on success, else the current holder."""

    async def identity(self) -> LogIdentity | None:
        """The identity `record_identity` stored, or None for a database no `init` has claimed."""

    async def record_identity(self, identity: LogIdentity) -> None:
        """Store the identity once; IdentityError, changing nothing, if another one is already stored."""

    async def is_empty(self) -> bool:
        """True when no leaf, stored hash, checkpoint or head row exists (a damaged log is not empty)."""

    async def checkpoint_sizes(self, after: int, limit: int) -> list[int]:
        """Sizes of the stored checkpoints above `after`, ascending, at most `limit` (for audits)."""

    async def close(self) -> None: ...


@runtime_checkable
class SharedQueue(Protocol):
    """Submissions accepted by a process that does not sequence, waiting for the one that does (contract 5)."""

    async def enqueue(self, entries: Sequence[tuple[bytes, bytes]]) -> None:
        """Durably queue (leaf hash, statement) pairs; ones already queued are left as they are."""

    async def queued(self, limit: int) -> list[bytes]:
        """The oldest queued statements not yet refused, at most `limit`."""

    async def dequeue(self, leaf_hashes: Sequence[bytes]) -> None:
        """Forget queued statements that are now in the log."""

    async def refuse_queued(self, refusals: dict[bytes, str]) -> None:
        """Mark queued statements the sequencer refused, with the reason, for their submitters to collect."""

    async def queue_refusals(self, leaf_hashes: Sequence[bytes]) -> dict[bytes, str]:
        """Collect (and forget) the refusals among these leaf hashes."""
