"""The unmerged tail's lookup keys, held in every serving process's memory, so reads never scan it (issue 20).

Lookups by leaf hash and by document hash (storage contract 6) read the sorted lookup tables below the merge
watermark; the leaves above it have no index, and a read that scans them costs ~3 us per unmerged row (10^5 rows:
~300 ms per proof). Here each process holds the 8-byte keys (`storage.hash_keys`) of the leaves from `floor` to
`end` with their indexes: the sequencing process adds what it commits, the others read the new leaves' keys from
storage as they follow the head (`follow`), and runs wholly below the watermark are dropped. A read hands the
indexes held for its key and `end` to storage (`TailHint`), which asks the tables, reads the rows of those indexes,
and scans only the rows from `end` on (those committed since this process last followed: none in the sequencing
process, one follow interval's worth in the others). The full hash is checked on every row read, as before.

Invariant (as in recentleaves.py): every leaf from `floor` to `end` is held, and `floor` is at most a watermark this
process has read from storage (which only grows). A hint is taken, without awaiting, before its statement starts,
so the statement's snapshot has a watermark W at least `floor`: the table holds the leaves below W, the hint those
from W to `end` (storage drops hinted indexes below W, so a merge that ended meanwhile doubles nothing), and the scan
those from max(W, end) on. No leaf is hidden, none is doubled.

Memory: about 120 bytes per held leaf (two dict entries of small ints, the run's key lists; measured by
tests/test_read_tail.py), so ~60 MB for a tail of 5*10^5 leaves, the bound of the merge policy.
"""

from collections import deque
from collections.abc import Sequence

from logserver.storage import EntryRecord, Storage, TailHint, hash_keys

FOLLOW_CHUNK = 50_000  # leaves' keys read per query while following


class KeyTail:
    """Key -> indexes of the held leaves (64-bit keys may collide: the oldest in a dict, the rest in `_more`)."""

    def __init__(self) -> None:
        self._first: dict[int, int] = {}
        self._more: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return len(self._first) + sum(len(more) for more in self._more.values())

    def add(self, index: int, key: int) -> None:
        if key in self._first:
            self._more.setdefault(key, []).append(index)
        else:
            self._first[key] = index

    def drop(self, index: int, key: int) -> None:
        """Forget the oldest index held for `key` (runs are dropped oldest first, so it is `index`)."""
        if self._first.get(key) != index:
            return
        more = self._more.get(key)
        if more:
            self._first[key] = more.pop(0)
            if not more:
                del self._more[key]
        else:
            del self._first[key]

    def indexes(self, key: int) -> tuple[int, ...]:
        at = self._first.get(key)
        if at is None:
            return ()
        more = self._more.get(key)
        return (at, *more) if more else (at,)


class ReadTail:
    """The lookup keys of leaves `floor`..`end` (module docstring: the invariant, the rule for what is not held)."""

    def __init__(self) -> None:
        self.floor = self.end = 0
        self.leaves, self.documents = KeyTail(), KeyTail()
        self._runs: deque[tuple[int, list[int], list[int | None]]] = deque()  # (first index, leaf keys, doc keys)

    def __len__(self) -> int:
        return self.end - self.floor

    def leaf_hint(self, leaf_hash: bytes) -> TailHint:
        return TailHint(self.leaves.indexes(hash_keys([leaf_hash])[0]), self.end)

    def documents_hint(self, documents: Sequence[bytes]) -> TailHint:
        held = sorted({i for key in set(hash_keys(documents)) for i in self.documents.indexes(key)})
        return TailHint(tuple(held), self.end)

    def added(self, first: int, leaf_keys: Sequence[int], document_keys: Sequence[int | None]) -> None:
        """Leaves `first`, `first + 1`, ... were committed with these keys. Only the part that extends `end` is
        taken: a run beyond `end` would leave a gap (the scan from `end` covers it until the next `follow`)."""
        skip = self.end - first
        if skip < 0 or skip >= len(leaf_keys):
            return
        leaves, documents = list(leaf_keys[skip:]), list(document_keys[skip:])
        for offset, (leaf, document) in enumerate(zip(leaves, documents, strict=True)):
            self.leaves.add(self.end + offset, leaf)
            if document is not None:
                self.documents.add(self.end + offset, document)
        self._runs.append((self.end, leaves, documents))
        self.end += len(leaves)

    def added_records(self, first: int, records: Sequence[EntryRecord]) -> None:
        """`added`, from the records the sequencer committed at `first` (their keys as storage derives them)."""
        documents = iter(hash_keys([r.document for r in records if r.document]))
        self.added(
            first, hash_keys([r.leaf_hash for r in records]), [next(documents) if r.document else None for r in records]
        )

    def merged_up_to(self, watermark: int) -> None:
        """The lookup tables hold every leaf below `watermark` (read from storage): forget the runs wholly below."""
        while self._runs and self._runs[0][0] + len(self._runs[0][1]) <= watermark:
            first, leaves, documents = self._runs.popleft()
            for offset, (leaf, document) in enumerate(zip(leaves, documents, strict=True)):
                self.leaves.drop(first + offset, leaf)
                if document is not None:
                    self.documents.drop(first + offset, document)
            self.floor = first + len(leaves)
        if not self._runs and watermark > self.end:  # nothing held: start above the watermark
            self.floor = self.end = watermark

    async def follow(self, storage: Storage, size: int) -> None:
        """Drop what is merged, then read the keys of the leaves from `end` up to `size` (the head followed)."""
        self.merged_up_to(await storage.lookup_watermark())
        while self.end < size:
            first = self.end
            keys = await storage.lookup_keys(first, min(size, first + FOLLOW_CHUNK))
            if not keys:
                return
            self.added(first, [leaf for leaf, _ in keys], [document for _, document in keys])
