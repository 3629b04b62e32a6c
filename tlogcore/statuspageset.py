"""The pages one index update reads and writes, whoever stores them (docs/status-proofs.md §6, §9): the log's
stores (logserver/statuspages.py, both engines) and the monitor's recomputed index (monitor/statusfile.py) keep
the same page rows; what they share is here, without I/O.

A read plan goes down its paths in rounds; the node ids it wants become page ids (`pages_of`), the pages not held
yet are read by the caller's storage and added (`PageSet.add`), and the plan is answered from the pages held
(`PageSet.nodes`): the 4 levels of a page are read once. An update made page by page
(statuspageupdate.PageUpdate) hands its pages whole to the commit (`PageSet.made`).
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tlogcore.statusindex_nodes import NodeId, StoredNode
from tlogcore.statusindex_pages import (
    Page,
    node_at,
    nodes_in,
    page_id_bytes,
    page_id_from_bytes,
    scan_page,
    stored_node,
)


def decoded(rows: Sequence[Sequence[Any]]) -> dict[NodeId, Page]:
    """Stored rows (page id, page data, anything else) as pages, each checked strictly (statusindex_pages.py)."""
    pages = {}
    for page_bytes, data, *_ in rows:
        page = page_id_from_bytes(bytes(page_bytes))
        pages[page] = scan_page(page[0], bytes(data))
    return pages


class PageSet:
    """Pages as of one version, each read once ({} for a page with no row); after a commit over that version,
    `written` holds the pages it wrote whole (for a reader that keeps some of them)."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.pages: dict[NodeId, Page] = {}
        self.written: dict[NodeId, Page] = {}
        self.whole = False  # `written` was made whole by the update itself (`made`)
        self.rows: list[tuple[bytes, int, bytes]] | None = None  # encoded elsewhere (`made_rows`)

    def missing(self, pages: Iterable[NodeId]) -> list[NodeId]:
        """The pages among these not held yet: the ones to read from storage."""
        return [page for page in set(pages) if page not in self.pages]

    def add(self, asked: Iterable[NodeId], rows: Sequence[Sequence[Any]]) -> None:
        """The rows storage found for the pages `asked` (a page asked with no row holds nothing)."""
        self.pages.update({page: {} for page in asked})
        self.pages.update(decoded(rows))

    def nodes(self, ids: Sequence[NodeId]) -> dict[NodeId, StoredNode]:
        """The rows of `ids` (absent ids have none); every page of them must be held."""
        return nodes_in(ids, self.pages)

    def made(self, written: dict[NodeId, Page]) -> None:
        """The pages an update made whole itself (statuspageupdate.PageUpdate): a commit stores them as they are."""
        self.written, self.whole = written, True

    def made_rows(self, rows: list[tuple[bytes, int, bytes]]) -> None:
        """The rows (page id, version, page row) of an update made and encoded by other processes
        (logserver/statusshards.py): a commit stores them as they are; `written` stays empty."""
        self.rows, self.whole = rows, True

    def page_ids_written(self) -> list[bytes]:
        """The stored ids of the pages the update stores (what a later prune deletes the older rows of): the
        rows' own ids, not made again from node ids (a fifth of the indexer's process at 10,000 entries/s did
        that, §11 "Nineteenth round")."""
        if self.rows is not None:
            return [row[0] for row in self.rows]
        return [page_id_bytes(page) for page in self.written]


def nodes_of(pages: Mapping[NodeId, Page], depth: int) -> dict[NodeId, StoredNode]:
    """The nodes at depth <= `depth` in these pages (every page starting at that depth or above)."""
    return {
        node: stored_node(raw)
        for page, nodes in pages.items()
        for position, raw in nodes.items()
        if (node := node_at(page, position))[0] <= depth
    }
