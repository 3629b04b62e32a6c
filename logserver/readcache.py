"""Parts of the read answers that their key fully determines, kept in bounded LRUs (issues 19 and 20).

`GET /api/v1/documents/<sha256>` builds, for each statement about the document and each registration of its
signers, an offline bundle (the statement, its inclusion proof, the checkpoint), and the document's status proof.
Each part is a function of a key that names everything it is made of, so a cached part is the part:

- a parsed statement, by entry index: entries never change once stored (storage contract 3). It is parsed
  without checking its signature again: the log checked it when it was submitted (as the status indexer reads
  entries), and every verifier checks it again from the bundle;
- a bundle, by (entry index, tree size, checkpoint note): the proof is the tree's at that size, the note is the
  bytes served;
- a status proof, by (document, index version): the rows of a version never change once written
  (logserver/statusstore.py), and the version names its size, root and the entry of its `index-root` statement;
- the size a published checkpoint note names, by the note's bytes.

A new checkpoint or index version is a new key, so nothing is ever invalidated; old keys age out. The bounds are in
entries: 4,096 bundles (~2 KB each) and status proofs (~1 KB), 16,384 statements (~1 KB): about 30 MB at most.
"""

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from logserver import api, proofs
from logserver.storage import Storage, StoredEntry
from tlogcore.bundle import TlogProof
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.note import parse_note
from tlogcore.statement import Statement, parse_statement

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
DEFAULT_ENTRIES = 4096


class Lru(Generic[K, V]):
    """A dict bounded in entries; the least recently used goes first."""

    def __init__(self, limit: int) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._limit = limit

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> V:
        if self._limit > 0:
            self._items[key] = value
            if len(self._items) > self._limit:
                self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)


class ReadCache:
    def __init__(self, storage: Storage, entries: int = DEFAULT_ENTRIES) -> None:
        self._storage = storage
        self.statements: Lru[int, Statement] = Lru(4 * entries)
        self.bundles: Lru[tuple[int, int, bytes], TlogProof] = Lru(entries)
        self.status_proofs: Lru[tuple[bytes, Hashable], api.StatusIndexProof] = Lru(entries)
        self._published: tuple[bytes, int] = (b"", 0)
        self._damaged: Hashable = None

    def damaged_index_reported(self, version: Hashable) -> bool:
        """True the first time a damaged status index `version` is met (one log line per version, not per lookup)."""
        first, self._damaged = self._damaged != version, version
        return first

    def statement(self, entry: StoredEntry) -> Statement:
        """The entry's statement, parsed once (structure checked, signature checked when it was submitted)."""
        found = self.statements.get(entry.index)
        return found or self.statements.put(entry.index, parse_statement(entry.data, check_signature=False))

    async def bundle(self, index: int, size: int, checkpoint: bytes) -> TlogProof:
        """`proofs.bundle_for`, once per (index, size, checkpoint)."""
        key = (index, size, checkpoint)
        found = self.bundles.get(key)
        return found or self.bundles.put(key, await proofs.bundle_for(self._storage, index, size, checkpoint))

    def published_size(self, note: bytes) -> int:
        """The size the checkpoint note names (the last note asked for is remembered: it is nearly always the same)."""
        if self._published[0] != note:
            self._published = (note, parse_checkpoint(parse_note(note).text).size)
        return self._published[1]
