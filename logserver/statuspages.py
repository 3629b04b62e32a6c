"""The status index's rows as pages, for both engines (docs/status-proofs.md §6, §9).

A read plan goes down its paths in rounds, level by level below the top its reader keeps; an update then rewrites
whole pages. A `PageSet` holds the pages one plan has read, as of its version, so that the 4 levels of a page are
read from storage once, and the update's commit finds the nodes it does not change without reading them again.
It lives as long as one plan and its update (a page as of a version never changes, but a set kept longer would
hide from readers what an operator did to the stored rows). The one set kept longer is the server's top pages
for its lookups (logserver/readcache.py, `StatusTop`): the tests that tamper with stored rows start a server anew.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from tlogcore.statusindex_nodes import NodeId, StoredNode
from tlogcore.statusindex_pages import Page, changed_pages, encode_raw, merge_pages, nodes_in, page_id_bytes, pages_of
from tlogcore.statuspageset import PageSet, decoded

# PageSet, decoded and nodes_of are written once in tlogcore/statuspageset.py (the monitor stores the same pages)


Select = Callable[[list[bytes], int], Awaitable[Sequence[Sequence[Any]]]]  # page ids, version -> (page, data) rows


def encoded(merged: Mapping[NodeId, Page], version: int) -> list[tuple[bytes, int, bytes]]:
    """The rows, in key order: the B-tree takes them in one pass instead of one random descent each. Sorted by
    node id, the page ids' own order (tlogcore/statusindex_pages.py `page_id_bytes`), without comparing bytes."""
    return [(page_id_bytes(page), version, encode_raw(merged[page])) for page in sorted(merged)]


class PagedNodes:
    """Both engines' page logic over their own SELECT: node ids to pages, and the whole pages an update writes."""

    def __init__(self, select: Select) -> None:
        self._select = select

    async def whole(self, pages: Iterable[NodeId], version: int, known: PageSet | None = None) -> dict[NodeId, Page]:
        """These pages as of `version` ({} for a page with no row): from `known` if it is of that version (and
        then added to it), else from storage."""
        wanted = set(pages)
        have = known.pages if known is not None and known.version == version else {}
        missing = [page for page in wanted if page not in have]
        fetched: dict[NodeId, Page] = {page: {} for page in missing}
        if missing:
            fetched.update(decoded(await self._select([page_id_bytes(page) for page in missing], version)))
            if known is not None and known.version == version:
                known.pages.update(fetched)
        return {page: fetched[page] if page in fetched else have[page] for page in wanted}

    async def nodes(self, ids: Sequence[NodeId], version: int, known: PageSet | None) -> dict[NodeId, StoredNode]:
        return nodes_in(ids, await self.whole(pages_of(ids), version, known))

    async def to_write(
        self, old: int | None, new: int, writes: Mapping[NodeId, StoredNode], known: PageSet | None
    ) -> list[tuple[bytes, int, bytes]]:
        """The rows that store `writes` at version `new` over version `old` (None: nothing stored yet); or, if
        `known` was made whole by its update (statuspageupdate.py, `writes` then empty), its pages as they are."""
        if known is not None and known.whole:
            if writes:
                raise ValueError("an update's pages are given whole or as node writes, not both")
            if known.rows is not None:  # encoded by the shards (statusshards.py)
                return known.rows
            return await asyncio.to_thread(encoded, known.written, new)
        changes = changed_pages(writes)
        current = {page: {} for page in changes} if old is None else await self.whole(changes, old, known)
        merged = merge_pages(current, changes)
        if known is not None:
            known.written = merged
        return await asyncio.to_thread(encoded, merged, new)  # encoded off the event loop
