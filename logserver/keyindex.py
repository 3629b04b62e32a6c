"""The key index at an index version, from the log's registry entries (tlogcore/keystatus.py; docs/status-proofs.md
§12): its root, which each `tlog-index-root/v2` statement states, and the proofs a document lookup serves for the
keys that signed the document's statements.

A registry is small and its entries below a size never change: each size asked (the sequencing process: each
version it states; a serving process: the version it serves) costs one read of the registry entries, and the map
is made again only when their number below the size changed, each entry parsed once.
"""

import logging

from logserver import api
from logserver.lru import Lru
from logserver.storage import Storage, StoredEntry
from tlogcore.indexroot import IndexRoot, parse_index_root
from tlogcore.keystatus import KeyMap, RegistryItem, key_records, registry_item
from tlogcore.logkey import is_log_key
from tlogcore.statement import parse_statement

log = logging.getLogger("logserver.keyindex")
KEPT_SIZES = 4  # the versions being stated and served, and the one before each


class KeyIndex:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._items: dict[int, RegistryItem | None] = {}
        self._maps: Lru[int, KeyMap] = Lru(KEPT_SIZES)  # by size
        self._by_count: Lru[int, KeyMap] = Lru(KEPT_SIZES)  # by the number of registry entries below the size
        self._mismatch_reported: int | None = None
        self._statement_of: tuple[bytes, IndexRoot] | None = None

    async def at(self, size: int) -> KeyMap:
        """The key index of entries [0, size)."""
        found = self._maps.get(size)
        if found is not None:
            return found
        below = [e for e in await self._storage.registry_entries() if e.index < size]
        keymap = self._by_count.get(len(below))  # the same entries (log order): the same map, made again only when
        if keymap is None:  # the registry changed (at 10^4 keys a map takes about 80 ms to make)
            items = [self._item(e) for e in below]
            keymap = KeyMap(key_records([item for item in items if item is not None], size))
            self._by_count.put(len(below), keymap)
        return self._maps.put(size, keymap)

    def _item(self, entry: StoredEntry) -> RegistryItem | None:
        """The registry entry's key index item, its statement parsed once (checked when it was submitted); None for
        a log-key entry."""
        if entry.index not in self._items:
            statement = None if is_log_key(entry.data) else parse_statement(entry.data, check_signature=False)
            self._items[entry.index] = registry_item(entry.index, statement) if statement is not None else None
        return self._items[entry.index]

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
