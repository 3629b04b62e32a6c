"""The key index at an index version, from the log's registry entries (tlogcore/keystatus.py; docs/status-proofs.md
§12): its root, which each `tlog-index-root/v2` statement states, and the proofs a document lookup serves for the
keys that signed the document's statements.

A registry is small and its entries below a size never change: each size asked (the sequencing process: each
version it states; a serving process: the version it serves) reads only the registry rows committed since the last
read, each parsed once, and the map is made again (in a thread) only when their number below the size changed.
"""

import asyncio
import logging
from bisect import bisect_left

from logserver import api
from logserver.lru import Lru
from logserver.storage import Storage
from tlogcore.indexroot import IndexRoot, parse_index_root
from tlogcore.keystatus import KeyMap, RegistryItem, key_records, registry_item
from tlogcore.logkey import is_log_key
from tlogcore.statement import parse_statement

log = logging.getLogger("logserver.keyindex")
KEPT_SIZES = 4  # the versions being stated and served, and the one before each
THREAD_FROM = 1_000  # registry items from which a map is made in a thread (1,000 keys: about 5 ms inline)


class KeyIndex:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._items: list[RegistryItem] = []  # every issuer-add and issuer-retire read so far, in log order
        self._by_key: dict[str, list[RegistryItem]] = {}  # the same, by the key each names
        self._read_from = 0  # the registry rows from this index on are not read yet
        self._covered = 0  # every registry row below this size has been read
        self._reading = asyncio.Lock()
        self._maps: Lru[int, KeyMap] = Lru(KEPT_SIZES)  # by size
        self._by_count: Lru[int, KeyMap] = Lru(KEPT_SIZES)  # by the number of registry items below the size
        self._mismatch_reported: int | None = None
        self._statement_of: tuple[bytes, IndexRoot] | None = None

    async def _read_below(self, size: int) -> None:
        """Read the registry rows committed since the last read, once per larger `size` asked: rows are committed in
        log order by one writer, and a size asked is a committed one, so then every row below it has been read."""
        if size <= self._covered:  # nearly every lookup: no lock taken
            return
        async with self._reading:  # lookups run concurrently: one read at a time, none answered from a partial one
            if size <= self._covered:
                return
            for entry in await self._storage.registry_entries(self._read_from):
                statement = None if is_log_key(entry.data) else parse_statement(entry.data, check_signature=False)
                item = registry_item(entry.index, statement) if statement is not None else None
                if item is not None:
                    self._items.append(item)
                    self._by_key.setdefault(item[2], []).append(item)
                self._read_from = entry.index + 1
            self._covered = size

    async def at(self, size: int) -> KeyMap:
        """The key index of entries [0, size)."""
        found = self._maps.get(size)
        if found is not None:
            return found
        await self._read_below(size)
        count = bisect_left(self._items, size, key=lambda item: item[0])
        keymap = self._by_count.get(count)  # the same items (log order): the same map, made again only when the
        if keymap is None:  # registry changed; a large map in a thread (at 10^4 keys about 80 ms: requests go on)
            records = key_records(self._items[:count])
            keymap = KeyMap(records) if count < THREAD_FROM else await asyncio.to_thread(KeyMap, records)
            self._by_count.put(count, keymap)
        return self._maps.put(size, keymap)

    async def named(self, keys: set[str], below: int) -> list[RegistryItem]:
        """The issuer-add and issuer-retire entries below `below` that name one of `keys`, in log order."""
        await self._read_below(below)
        return sorted(item for key in keys for item in self._by_key.get(key, ()) if item[0] < below)

    def _index_root(self, data: bytes) -> IndexRoot:
        """The served version's index-root statement, parsed once (the log signed and checked it)."""
        if self._statement_of is None or self._statement_of[0] != data:
            self._statement_of = (data, parse_index_root(data, check_signature=False))
        return self._statement_of[1]

    async def proofs(self, index_root: bytes, signers: list[str]) -> tuple[api.KeyStatusProof, ...] | None:
        """The proof of each signer's key record under the `keys` root of the logged `index_root` statement; none
        for a v1 statement. None when the map made here does not lead to that root: damage, said once per version,
        and the caller then serves no status proof at all (a v2 answer without the signers' key proofs is what a
        proxy hiding a stolen-key report sends, which verifiers call tampered)."""
        statement = self._index_root(index_root)
        if statement.keys is None:
            return ()
        keymap = await self.at(statement.size)
        if keymap.root != statement.keys:
            if self._mismatch_reported != statement.size:
                self._mismatch_reported = statement.size
                log.error("key index at size %d differs from its logged root: no status proofs served", statement.size)
            return None
        answers = []
        for vkey in sorted(set(signers)):
            record, proof = keymap.prove(vkey)
            answers.append(api.KeyStatusProof(vkey, record.to_bytes() if record is not None else None, proof))
        return tuple(answers)
