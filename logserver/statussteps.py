"""The entries of one status index update, and the next update's read ahead (docs/status-proofs.md §9, §11
"Thirteenth round").

An update covers the log entries after the version it builds on: their `issue` and `revoke` statements, read and
parsed here (`read_step`). In the indexer's own process the update after it is read ahead while it is applied
(`read_ahead`): its entries, and the pages just below the kept top on its documents' paths, the one round of
reads that is most of an update's waiting for the database. Before, every update began with those reads, after
the previous one had been applied, so the process waited on the database with nothing else to do (at 10,000
entries/s: reads 1.2-2.2 s of a 4.6 s update of 47,000 documents, §11 "Thirteenth round").

The pages read ahead are as of the version being applied, V, which has no rows yet: a read returns each page's
newest row below V. That is V's page for every page V does not write, and the pages V writes are laid over them
whole when the next update is made (as the overlap does, statusindexer.py). The version V builds on may still be
committing while they are read: its pages (`uncommitted`) are laid over them here. The version before it has
landed (a version is committed only after the one before it).
"""

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from logserver.statusstore import StatusStore
from logserver.storage import Storage
from tlogcore.indexroot import HEADER as INDEX_ROOT_HEADER
from tlogcore.logkey import is_log_key
from tlogcore.statement import DOCUMENT_KINDS, logged_document, parse_statement
from tlogcore.statusindex_nodes import NodeId
from tlogcore.statusindex_pages import Page
from tlogcore.statuspageupdate import frontier_below

INDEX_ROOT_PREFIX = (INDEX_ROOT_HEADER + "\n").encode()
Entry = tuple[int, str, bytes]  # (log index, statement kind, document SHA-256)


def is_index_root(data: bytes) -> bool:
    return data.startswith(INDEX_ROOT_PREFIX)


def document_entries(datas: Sequence[bytes], first: int) -> tuple[list[Entry], bool]:
    """The (index, kind, document) of the issue and revoke statements among entries first, first+1, …, and
    whether any entry is not an index-root statement (then the range calls for a new index version)."""
    found, other = [], False
    for offset, data in enumerate(datas):
        if is_index_root(data) or is_log_key(data):  # neither names a document (a log-key: logkeys.py)
            continue
        other = True
        document = logged_document(data)  # logged: parsed whole when it was submitted
        if document is not None:
            found.append((first + offset, *document))
            continue
        statement = parse_statement(data, check_signature=False)  # a registry statement (or never seen before)
        if statement.kind in DOCUMENT_KINDS and statement.document is not None:
            found.append((first + offset, statement.kind, statement.document))
    return found, other


@dataclass(frozen=True)
class Step:
    """Log entries [start, end): their document statements, and whether they call for a new index version."""

    start: int
    end: int
    entries: list[Entry]
    grows: bool


async def read_step(storage: Storage, start: int, most: int) -> Step | None:
    """The entries after `start`, `most` at most; None if the log holds none. Parsed in a thread: the event loop
    (sequencing, lookups, the commit in flight) goes on meanwhile (§9)."""
    log_head = await storage.head()
    end = min(log_head.size if log_head else 0, start + most)
    if end <= start:
        return None
    datas = await storage.get_entries(start, end)
    entries, grows = await asyncio.to_thread(document_entries, datas, start)
    return Step(start, end, entries, grows)


@dataclass(frozen=True)
class ReadAhead:
    """The update after the one being applied: its entries, and pages below the kept top as of the version being
    applied but for the pages that version writes (laid over them when the update is made)."""

    step: Step
    pages: dict[NodeId, Page]


async def read_ahead(
    storage: Storage,
    store: StatusStore,
    applied: Step,
    most: int,
    held: Mapping[NodeId, Page],
    below: int,
    uncommitted: Mapping[NodeId, Page] | None,
) -> ReadAhead | None:
    """Read the update after the one `applied` makes, while it is applied: its entries (`most` at most), and the
    pages starting at depth `below` on their paths, found through `held` (every page above `below` as of the
    version being built on; the pages the applied update adds are its own, laid over later). `uncommitted`: the
    pages of the version being built on, if its commit may not have landed yet (module docstring). None if the
    log holds no entry that calls for a version."""
    step = await read_step(storage, applied.end, most)
    if step is None or not step.grows:
        return None
    bits = sorted({int.from_bytes(document, "big") for _, _, document in step.entries})
    wanted = {(depth, prefix) for depth, prefix, _, _ in frontier_below(bits, held, below)}
    pages = await store.read_pages(wanted, applied.end, None)
    if uncommitted:
        pages.update((page, uncommitted[page]) for page in pages.keys() & uncommitted.keys())
    return ReadAhead(step, pages)
