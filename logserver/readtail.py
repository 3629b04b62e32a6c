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

Memory: about 250 bytes per held leaf naming a document (two dict entries and their integers; measured by
tests/test_read_tail.py), so ~125 MB per process for a tail of 5*10^5 leaves, the bound of the merge policy. Time:
keys are added in one C-speed dict update per batch, and dropped a segment of 2^16 leaves at a time (the dicts
freed whole), so neither the sequencer's commits nor a merge stall the event loop for long.
"""

from collections import deque
from collections.abc import Sequence

from logserver.storage import EntryRecord, Storage, TailHint, hash_key, hash_keys

FOLLOW_CHUNK = 50_000  # leaves' keys read per query while following
SEGMENT = 1 << 16  # leaves per segment: dropped whole once merged (a few ms), looked up one dict per segment


class KeyMap:
    """Key -> indexes of one segment's leaves (64-bit keys may collide, and a document is named by several
    statements: the first index in `first`, the others in `more`)."""

    def __init__(self) -> None:
        self.first: dict[int, int] = {}
        self.more: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return len(self.first) + sum(len(more) for more in self.more.values())

    def add(self, keys: Sequence[int], indexes: Sequence[int]) -> None:
        """Indexes ascending. In one C-speed update when no key repeats (almost always), else one by one."""
        fresh = dict(zip(keys, indexes, strict=True))
        if len(fresh) == len(keys) and fresh.keys().isdisjoint(self.first.keys()):  # views: the smaller is walked
            self.first.update(fresh)
            return
        for key, index in zip(keys, indexes, strict=True):
            if key in self.first:
                self.more.setdefault(key, []).append(index)
            else:
                self.first[key] = index

    def find(self, key: int, into: list[int]) -> None:
        at = self.first.get(key)
        if at is not None:
            into.append(at)
            if self.more:
                into += self.more.get(key, ())


class Segment:
    """The keys of leaves `start`..`end`, held and dropped together."""

    def __init__(self, start: int) -> None:
        self.start = self.end = start
        self.leaves, self.documents = KeyMap(), KeyMap()


class ReadTail:
    """The lookup keys of leaves `floor`..`end` (module docstring: the invariant, the rule for what is not held)."""

    def __init__(self, segment: int = SEGMENT) -> None:
        self._segments: deque[Segment] = deque()
        self._segment = segment
        self.floor = self.end = 0

    def __len__(self) -> int:
        return self.end - self.floor

    def leaf_indexes(self, key: int) -> list[int]:
        found: list[int] = []
        for segment in self._segments:
            segment.leaves.find(key, found)
        return found

    def leaf_hint(self, leaf_hash: bytes) -> TailHint:
        return TailHint(tuple(self.leaf_indexes(hash_key(leaf_hash))), self.end)

    def documents_hint(self, documents: Sequence[bytes]) -> TailHint:
        found: list[int] = []
        for key in set(hash_keys(documents)):
            for segment in self._segments:
                segment.documents.find(key, found)
        return TailHint(tuple(sorted(found)), self.end)

    def added(self, first: int, leaf_keys: Sequence[int], document_keys: Sequence[int | None]) -> None:
        """Leaves `first`, `first + 1`, ... were committed with these keys. Only the part that extends `end` is
        taken: a run beyond `end` would leave a gap (the scan from `end` covers it until the next `follow`)."""
        skip = self.end - first
        if skip < 0 or skip >= len(leaf_keys):
            return
        if not self._segments or self._segments[-1].end - self._segments[-1].start >= self._segment:
            self._segments.append(Segment(self.end))
        segment, start, end = self._segments[-1], self.end, first + len(leaf_keys)
        segment.leaves.add(leaf_keys[skip:], range(start, end))
        named = [(key, start + at) for at, key in enumerate(document_keys[skip:]) if key is not None]
        segment.documents.add([key for key, _ in named], [index for _, index in named])
        segment.end = self.end = end

    def added_records(self, first: int, records: Sequence[EntryRecord]) -> None:
        """`added`, from the records the sequencer committed at `first` (their keys as storage derives them)."""
        documents = iter(hash_keys([r.document for r in records if r.document]))
        document_keys = [next(documents) if r.document else None for r in records]
        self.added(first, hash_keys([r.leaf_hash for r in records]), document_keys)

    def merged_up_to(self, watermark: int) -> None:
        """The lookup tables hold every leaf below `watermark` (read from storage): drop the segments wholly below
        it (the floor may stay below the watermark by up to a segment: storage drops hinted indexes below it)."""
        while self._segments and self._segments[0].end <= watermark:
            self.floor = self._segments.popleft().end
        if not self._segments and watermark > self.end:  # nothing held: start above the watermark
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
