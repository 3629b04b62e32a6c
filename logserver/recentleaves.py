"""The log's unmerged tail, held in the sequencing process's memory (storage contract 6, issue 20).

The sequencer looks every submission up twice: on arrival, and again just before its commit. Asking storage
for the whole log scans every leaf above the lookup watermark each time, and that tail grows between merges.
The sequencer committed those leaves itself, so it keeps their hashes here and asks storage for the merged
lookup table alone.

Invariant: every leaf from `floor` to the head is held here, and `floor` is at most the stored watermark (which
only grows). The table holds everything below the watermark, so the table and this map together find every
leaf. The watermark is read before the table is asked (`load`, `merged_up_to`), never after.
"""

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from logserver.storage import Storage
from tlogcore.merkle import leaf_hash

LOAD_CHUNK = 10_000  # leaves read per query when loading the tail at startup


@dataclass
class RecentLeaves:
    floor: int
    _index: dict[bytes, int] = field(default_factory=dict)
    _runs: deque[tuple[int, list[bytes]]] = field(default_factory=deque)  # (first index, hashes), oldest first

    @classmethod
    async def load(cls, storage: Storage, size: int) -> "RecentLeaves":
        """The tail of a log of `size` leaves: the leaves from the stored watermark on, read once."""
        watermark = await storage.lookup_watermark()
        recent = cls(min(watermark, size))
        for start in range(recent.floor, size, LOAD_CHUNK):
            entries = await storage.get_entries(start, min(size, start + LOAD_CHUNK))
            recent.added(start, [leaf_hash(data) for data in entries])
        return recent

    def __len__(self) -> int:
        return len(self._index)

    def added(self, first: int, hashes: Sequence[bytes]) -> None:
        """Leaves `first`, `first + 1`, ... were committed with these hashes."""
        run = list(hashes)
        for offset, digest in enumerate(run):
            self._index.setdefault(digest, first + offset)
        self._runs.append((first, run))

    def merged_up_to(self, watermark: int) -> None:
        """The lookup table now holds every leaf below `watermark`: forget the runs wholly below it."""
        while self._runs and self._runs[0][0] + len(self._runs[0][1]) <= watermark:
            first, run = self._runs.popleft()
            for offset, digest in enumerate(run):
                if self._index.get(digest) == first + offset:
                    del self._index[digest]
            self.floor = first + len(run)

    async def find(self, storage: Storage, hashes: Sequence[bytes]) -> dict[bytes, int]:
        """Index of each leaf hash already in the log (`Storage.find_leaves`), without scanning the tail."""
        while True:
            floor = self.floor
            found = await storage.find_merged(hashes)
            # A merge that ended while the table was read (PostgreSQL reads wait) may have taken runs out of memory
            # that the table's older snapshot lacks: read it again. Unchanged, the floor was at most the watermark
            # the table had when asked, so the two together still hold every leaf.
            if self.floor == floor:
                break
        index = self._index
        for digest in hashes:
            at = index.get(digest)
            if at is not None and found.get(digest, at) >= at:
                found[digest] = at
        return found
