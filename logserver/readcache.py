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
- the newest index version whose `index-root` statement a published checkpoint holds, by the checkpoint's size, for
  NEWEST_LOGGED_SECONDS at most: the one part that is not a function of its key alone. Its answer moves on when
  the statement of a newer version is recorded after the checkpoint that holds it was published (the sequencing
  process records it right after the commit), or when the index is rebuilt; so it is read again after that long,
  and at once after a lookup found its version pruned (statuslookup.py). Meanwhile the version served is one whose
  statement the same checkpoint holds, so the answer is as true, at most that much older; a version's rows are
  kept PRUNE_GRACE (2 s) after a newer one is served. A read of it is 3 % of a lookup at 10^7 documents;
- the status index's top pages, by (index version, page): the pages starting at depth <= STATUS_TOP_DEPTH that
  the lookups at the newest version read (`StatusTop`). Every path starts with the same few: at 10^7 documents 4
  of the 7 pages of a path, each a read of the index file otherwise (docs/status-proofs.md §11 "Thirtieth round").
  Only the pages of a proof checked against its root are kept. A row an operator rewrites afterwards is not seen
  by this process until the next version (its answers stay the true ones); a server started anew reads it;
- the tops of the paths walked at that version, by the key's first 12 bits (`StatusTop.prefixes_for`, at most
  4,096: each the proof's part above depth 12 and the hash named there, checked against the version's root as a
  walk went down), so a walk under a kept prefix starts at depth 12 (tlogcore/statuspageproof.py).

Apart from the newest logged version, a new checkpoint or index version is a new key, so nothing is invalidated;
old keys age out. The bounds are in entries: 4,096 bundles (~2 KB each) and status proofs (~1 KB), 16,384
statements (~1 KB), and the 4,369 top pages of one index version (~3 KB each, 13 MB at 10^7 documents) with its
4,096 path tops (~0.6 KB each): about 48 MB at most. The stored hashes that inclusion
proofs share are kept by the storage itself (leafproof.KnownHashes, for every proof by index or by leaf hash).
"""

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import NamedTuple

from logserver import api, proofs
from logserver.keyindex import KeyIndex
from logserver.lru import Lru
from logserver.statusstore import IndexVersion
from logserver.storage import Storage, StoredEntry
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.note import parse_note
from tlogcore.statement import Statement, parse_statement
from tlogcore.statusindex import KEY_BITS, key_int
from tlogcore.statusindex_pages import STRIDE
from tlogcore.statuspageproof import Prefixes
from tlogcore.statuspageset import PageSet

DEFAULT_ENTRIES = 4096
NEWEST_LOGGED_SECONDS = 0.1  # at 2,000 lookups/s one read of the newest logged index version for ~200 (module doc)
STATUS_TOP_DEPTH = 12  # pages starting at depth 0, 4, 8 and 12: 4,369 at most (docs/status-proofs.md §9 "Serving")


class ServedBundle(NamedTuple):
    """What an answer carries of an offline bundle: its extra data (a registration's) and its text form."""

    extra: bytes | None
    text: bytes


class StatusTop:
    """The status index's pages starting at depth <= `depth` as of one index version (a version's rows never
    change), as the lookups at that version read them, and the tops of the paths walked at that version, checked
    against its root (`prefixes`, tlogcore/statuspageproof.py); a lookup at another version starts them again."""

    def __init__(self, depth: int = STATUS_TOP_DEPTH) -> None:
        self._depth = depth
        self._held = PageSet(-1)
        self._prefixes: Prefixes = {}

    def prefixes_for(self, version: int) -> Prefixes | None:
        """The path tops kept for `version`, for its lookup's walk to use and add to (None: not the version held,
        or nothing is kept)."""
        return self._prefixes if self._held.version == version and self._depth >= 0 else None

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
            self._held, self._prefixes = PageSet(pages.version), {}
        self._held.pages.update({page: nodes for page, nodes in pages.pages.items() if page[0] <= self._depth})


class ReadCache:
    def __init__(
        self, storage: Storage, entries: int = DEFAULT_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._storage, self._clock = storage, clock
        self.statements: Lru[int, Statement] = Lru(4 * entries)
        self.bundles: Lru[tuple[int, int, bytes], ServedBundle] = Lru(entries)
        self.status_proofs: Lru[tuple[bytes, Hashable], api.StatusIndexProof] = Lru(entries)
        self.entry_bytes: Lru[int, bytes] = Lru(min(entries, 64))
        self.status_top = StatusTop(STATUS_TOP_DEPTH if entries else -1)
        self._published: tuple[bytes, int] = (b"", 0)
        self._logged_for = NEWEST_LOGGED_SECONDS if entries else 0.0
        self._logged: tuple[int, float, IndexVersion | None] | None = None  # (below, read at, the version)
        self._damaged: Hashable = None
        self.keys = KeyIndex(storage)

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

    async def newest_logged(
        self, below: int, read: Callable[[int], Awaitable[IndexVersion | None]]
    ) -> IndexVersion | None:
        """`read(below)` (the status store's `newest_logged`), kept NEWEST_LOGGED_SECONDS for the same `below`
        (module docstring)."""
        now, kept = self._clock(), self._logged
        if kept is not None and kept[0] == below and now - kept[1] < self._logged_for:
            return kept[2]
        version = await read(below)
        self._logged = (below, now, version)
        return version

    def forget_newest_logged(self) -> None:
        """Read the newest logged version again at the next lookup (the one kept was pruned meanwhile)."""
        self._logged = None

    def published_size(self, note: bytes) -> int:
        """The size the checkpoint note names (the last note asked for is remembered: it is nearly always the same)."""
        if self._published[0] != note:
            self._published = (note, parse_checkpoint(parse_note(note).text).size)
        return self._published[1]
