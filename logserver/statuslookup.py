"""A document's status proof for `GET /api/v1/documents/<sha256>` (docs/status-proofs.md §9 "API").

The proof is served for the newest index version whose `index-root` statement is inside the newest published
(cosigned) checkpoint, read at that version (newer rows may already be written beside it), so a verifier holding
that checkpoint can check everything: the statement's inclusion, its signature, and the proof against its root.
A version's rows never change, so the proof is kept per (document, version) (logserver/readcache.py).

A version's rows do go, though: those a newer version superseded are pruned `PRUNE_GRACE` after the newer one is
served (logserver/statusindexer.py). A lookup slower than that, whose checkpoint was read before, reads what is
left of its version: an empty page where the root was, say, and a proof that does not lead to the root it states
(every verifier would call the answer tampered). So no proof is served before it is checked against its root; one
that fails while the served version has moved on makes the caller answer again under the newest checkpoint
(`IndexVersionGone`); one that fails at the served version itself is damage.
"""

import dataclasses
import logging

from logserver import api
from logserver.readcache import ReadCache
from logserver.statusindexer import published_and_served
from logserver.statusstore import StatusStore
from logserver.storage import Storage
from tlogcore.errors import MalformedError, ProofError
from tlogcore.statusindex_nodes import LATER_WINDOW
from tlogcore.statuspageproof import Found, Prefixes, path_page_ids, path_proof
from tlogcore.statuspageset import PageSet

log = logging.getLogger("logserver.statuslookup")


class IndexVersionGone(Exception):
    """The index version the caller's checkpoint names was pruned while it was read: answer again, under the newest
    published checkpoint."""


async def status_index_proof(
    storage: Storage,
    store: StatusStore,
    document: bytes,
    published: bytes | None,
    cache: ReadCache,
    may_retry: bool = False,
    signers: list[str] | None = None,
) -> api.StatusIndexProof | None:
    """The record and proof of `document` under the newest logged index root in `published`, the newest published
    checkpoint (read once by the caller, for the bundles too), with the key index proofs of `signers` (the keys
    that signed the document's statements). With `may_retry`, IndexVersionGone if that version was pruned
    meanwhile (module docstring)."""
    answer = await _document_proof(storage, store, document, published, cache, may_retry)
    if answer is None or not signers:
        return answer
    keys = await cache.keys.proofs(answer.index_root.statement, signers)
    if keys is None:  # the key index is damaged: as for a damaged status index, no status proof (not "tampered")
        return None
    return dataclasses.replace(answer, keys=keys) if keys else answer


async def _document_proof(
    storage: Storage,
    store: StatusStore,
    document: bytes,
    published: bytes | None,
    cache: ReadCache,
    may_retry: bool,
) -> api.StatusIndexProof | None:
    if published is None:
        return None
    version = await cache.newest_logged(cache.published_size(published), store.newest_logged)
    if version is None or version.entry is None:
        return None
    key = (document, version)
    found = cache.status_proofs.get(key)
    if found is not None:
        return found
    try:
        pages = cache.status_top.pages_for(document, version.size)
        prefixes = cache.status_top.prefixes_for(version.size)
        record, proof = await read_proof(store, document, version.size, pages, version.root, prefixes)
        proof_bytes = proof.to_bytes()
    except (MalformedError, ProofError) as exc:  # IndexStorageError included: stored rows that contradict each other
        cache.forget_newest_logged()  # read again by the next lookup, and by this one's answer again
        if may_retry and (await published_and_served(storage, store))[1] > version.size:  # served has moved on
            raise IndexVersionGone(f"index version {version.size} was pruned during the lookup") from None
        # The server's damage, not the client's bad request: the statements are still answered with their proofs;
        # without a status proof every verifier says the status is not proven. The index is derived from the log
        # alone, so a copy rebuilt from it mends this (docs/status-proofs.md §6).
        if cache.damaged_index_reported(version):
            log.error("status index damaged at size %d (%s): lookups carry no status proof", version.size, exc)
        return None
    cache.status_top.keep(pages)  # only now: the pages of a proof that failed are never kept
    statement = await cache.entry(version.entry)
    answer = api.StatusIndexProof(
        version.size,
        version.root,
        record.to_bytes() if record is not None else None,
        proof_bytes,
        api.IndexRootEntry(version.entry, statement),
    )
    return cache.status_proofs.put(key, answer)


async def read_proof(
    store: StatusStore, document: bytes, version: int, pages: PageSet, root: bytes, prefixes: Prefixes | None = None
) -> Found:
    """The document's record and proof as of `version`, from the pages on its path: those `pages` lacks down to
    about the path's expected depth in one read (log2 of the documents + 4, as PathPlan asks), more if it goes
    deeper; checked against the version's `root` (never another tree's) as the path is walked, from the top kept
    in `prefixes` (of that version) if its prefix has one (tlogcore/statuspageproof.py)."""
    start, end = 0, version.bit_length() + 4
    while True:
        await store.read_pages(path_page_ids(document, start, end), version, pages)
        found = path_proof(document, pages.pages, root, prefixes)
        if not isinstance(found, int):
            return found
        start, end = found, found + LATER_WINDOW
