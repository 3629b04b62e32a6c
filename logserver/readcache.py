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
- the size a published checkpoint note names, by the note's bytes;
- an entry's bytes, by entry index (an index version's `index-root` statement, which every lookup at it carries);
- the status index's top pages, by (index version, page): the pages starting at depth <= STATUS_TOP_DEPTH that
  the lookups at the newest version read (`StatusTop`). Every path starts with the same few: at 10^7 documents 4
  of the 7 pages of a path, each a read of the index file otherwise (docs/status-proofs.md §11 "Thirtieth round").
  Only the pages of a proof checked against its root are kept. A row an operator rewrites afterwards is not seen
  by this process until the next version (its answers stay the true ones); a server started anew reads it.

A new checkpoint or index version is a new key, so nothing is ever invalidated; old keys age out. The bounds are in
entries: 4,096 bundles (~2 KB each) and status proofs (~1 KB), 16,384 statements (~1 KB), and the 4,369 top pages
of one index version (~3 KB each, 13 MB at 10^7 documents): about 45 MB at most. The stored hashes that inclusion
proofs share are kept by the storage itself (leafproof.KnownHashes, for every proof by index or by leaf hash).
"""

from collections.abc import Hashable
from typing import NamedTuple

from logserver import api, proofs
from logserver.lru import Lru
from logserver.storage import Storage, StoredEntry
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.note import parse_note
from tlogcore.statement import Statement, parse_statement
from tlogcore.statusindex import KEY_BITS, key_int
from tlogcore.statusindex_pages import STRIDE
from tlogcore.statuspageset import PageSet

DEFAULT_ENTRIES = 4096
STATUS_TOP_DEPTH = 12  # pages starting at depth 0, 4, 8 and 12: 4,369 at most (docs/status-proofs.md §9 "Serving")


class ServedBundle(NamedTuple):
    """What an answer carries of an offline bundle: its extra data (a registration's) and its text form."""

    extra: bytes | None
    text: bytes


class StatusTop:
    """The status index's pages starting at depth <= `depth` as of one index version (a version's rows never
    change), as the lookups at that version read them; a lookup at another version starts the set again."""

    def __init__(self, depth: int = STATUS_TOP_DEPTH) -> None:
        self._depth = depth
        self._held = PageSet(-1)

    def pages_for(self, key: bytes, version: int) -> PageSet:
        """A lookup's page set at `version`, holding the top pages on `key`'s path that are held already."""
        pages = PageSet(version)
        if self._held.version == version:
            bits = key_int(key)
            for depth in range(0, self._depth + 1, STRIDE):
                page = (depth, bits >> (KEY_BITS - depth))
                if (nodes := self._held.pages.get(page)) is not None:
                    pages.pages[page] = nodes
        return pages

    def keep(self, pages: PageSet) -> None:
        """Hold the top pages a lookup read (its set is of the newest version asked: an older one is not kept)."""
        if self._held.version != pages.version:
            if pages.version < self._held.version:
                return
            self._held = PageSet(pages.version)
        self._held.pages.update({page: nodes for page, nodes in pages.pages.items() if page[0] <= self._depth})


class ReadCache:
    def __init__(self, storage: Storage, entries: int = DEFAULT_ENTRIES) -> None:
        self._storage = storage
        self.statements: Lru[int, Statement] = Lru(4 * entries)
        self.bundles: Lru[tuple[int, int, bytes], ServedBundle] = Lru(entries)
        self.status_proofs: Lru[tuple[bytes, Hashable], api.StatusIndexProof] = Lru(entries)
        self.entry_bytes: Lru[int, bytes] = Lru(min(entries, 64))
        self.status_top = StatusTop(STATUS_TOP_DEPTH if entries else -1)
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

    async def bundle(self, index: int, size: int, checkpoint: bytes, statement: bytes | None = None) -> ServedBundle:
        """`proofs.bundle_for` and its text, once per (index, size, checkpoint); `statement`: the entry's bytes,
        if read. The text is kept too: a signer's registration is in every answer about its documents."""
        key = (index, size, checkpoint)
        found = self.bundles.get(key)
        if found is not None:
            return found
        made = await proofs.bundle_for(self._storage, index, size, checkpoint, statement)
        return self.bundles.put(key, ServedBundle(made.extra, made.to_text()))

    async def entry(self, index: int) -> bytes:
        """The stored entry's bytes (an index version's `index-root` statement: every lookup at it carries it)."""
        found = self.entry_bytes.get(index)
        return found or self.entry_bytes.put(index, (await self._storage.get_entries(index, index + 1))[0])

    def published_size(self, note: bytes) -> int:
        """The size the checkpoint note names (the last note asked for is remembered: it is nearly always the same)."""
        if self._published[0] != note:
            self._published = (note, parse_checkpoint(parse_note(note).text).size)
        return self._published[1]
