"""`tlog-server check`: a full integrity audit of a log's database, read only.

Every leaf is rehashed and compared with its stored level-0 hash; every stored inner node is recomputed from its
two children; every stored checkpoint must verify with a log key (the first, or one the log announced in a
`tlog-log-key/v1` entry), name this log, and have the root the stored tree gives at its size (so all of them are
consistent with each other and with the head: RFC 9162 §2.1.4 proofs come from the same hashes). The head's root
must be the root of the whole tree. What a damaged database looks like (a zeroed hash, a deleted leaf, a lost head
row) is named with the first index it touches.
"""

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from logserver.keyguard import verified_head
from logserver.logkeys import announced_keys
from logserver.storage import Head, Storage
from tlogcore import merkle
from tlogcore.keys import Verifier

CHUNK = 4096  # leaves or hashes per read


@dataclass
class Audit:
    entries: int = 0
    hashes: int = 0
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < 100:  # enough to act on; the count says the rest
            self.problems.append(text)


async def audit(storage: Storage, origin: str, verifier: Verifier) -> Audit:
    result = Audit()
    head = await storage.head()
    if head is None:
        if not await storage.is_empty():
            result.problem("the database holds entries, hashes or checkpoints but no head (row or checkpoint lost)")
        return result
    await _check_leaves(storage, head.size, result)
    await _check_nodes(storage, head.size, result)
    announced = announced_keys([entry.data for entry in await storage.registry_entries()])
    await _check_checkpoints(storage, head, origin, [verifier, *announced], result)
    return result


async def _chunks(size: int) -> AsyncIterator[tuple[int, int]]:
    for start in range(0, size, CHUNK):
        yield start, min(size, start + CHUNK)


async def _hashes(storage: Storage, level: int, start: int, end: int) -> dict[int, bytes]:
    """Stored hashes of (level, i) for i in [start, end), by i; missing ones left out."""
    indexes = [merkle.stored_hash_index(level, i) for i in range(start, end)]
    found: dict[int, bytes] = {}
    try:
        hashes = await storage.get_hashes(indexes)
        return dict(zip(range(start, end), hashes, strict=True))
    except KeyError:
        for i, index in zip(range(start, end), indexes, strict=True):
            with contextlib.suppress(KeyError):
                found[i] = (await storage.get_hashes([index]))[0]
        return found


async def _check_leaves(storage: Storage, size: int, result: Audit) -> None:
    async for start, end in _chunks(size):
        stored = await _hashes(storage, 0, start, end)
        for index, data in (await _entries(storage, start, end, result)).items():
            result.entries += 1
            if index not in stored:
                result.problem(f"the level-0 hash of entry {index} is missing")
            elif merkle.leaf_hash(data) != stored[index]:
                result.problem(f"entry {index} does not hash to its stored level-0 hash")


async def _entries(storage: Storage, start: int, end: int, result: Audit) -> dict[int, bytes]:
    try:
        return dict(zip(range(start, end), await storage.get_entries(start, end), strict=True))
    except KeyError:
        found = {}
        for index in range(start, end):
            try:
                found[index] = (await storage.get_entries(index, index + 1))[0]
            except KeyError:
                result.problem(f"entry {index} is missing")
        return found


async def _check_nodes(storage: Storage, size: int, result: Audit) -> None:
    level = 1
    while size >> level:
        count = size >> level
        async for start, end in _chunks(count):
            parents = await _hashes(storage, level, start, end)
            children = await _hashes(storage, level - 1, 2 * start, 2 * end)
            for index in range(start, end):
                result.hashes += 1
                left, right = children.get(2 * index), children.get(2 * index + 1)
                if index not in parents:
                    result.problem(f"the stored hash of node (level {level}, index {index}) is missing")
                elif left is not None and right is not None and merkle.node_hash(left, right) != parents[index]:
                    result.problem(f"the stored hash of node (level {level}, index {index}) is not its children's")
        level += 1


async def _check_checkpoints(
    storage: Storage, head: Head, origin: str, verifier: Sequence[Verifier], result: Audit
) -> None:
    after = -1
    while sizes := await storage.checkpoint_sizes(after, CHUNK):
        for size in sizes:
            result.checkpoints += 1
            note = await storage.checkpoint_at(size)
            if note is not None and not isinstance(note, bytes):  # a hand-edited row of another SQL type
                note = str(note).encode()
            signed = verified_head(note, origin, verifier) if note is not None else None
            if signed is None or signed.size != size:
                result.problem(f"the checkpoint of size {size} does not verify with the log key of {origin}")
            elif size <= head.size and signed.root != await _root(storage, size):
                result.problem(f"the checkpoint of size {size} has another root than the stored tree at that size")
        after = sizes[-1]
    if await _root(storage, head.size) != head.root:
        result.problem(f"the head (size {head.size}) has another root than the stored tree")


async def _root(storage: Storage, size: int) -> bytes | None:
    if size == 0:
        return merkle.EMPTY_ROOT
    plan = merkle.root_plan(size)
    try:
        return plan.assemble(await storage.get_hashes(plan.stored_indexes))[0]
    except KeyError:
        return None
