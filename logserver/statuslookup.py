"""A document's status proof for `GET /api/v1/documents/<sha256>` (docs/status-proofs.md §9 "API").

The proof is served for the newest index version whose `index-root` statement is inside the newest published
(cosigned) checkpoint, read at that version (newer rows may already be written beside it), so a verifier holding
that checkpoint can check everything: the statement's inclusion, its signature, and the proof against its root.
A version's rows never change, so the proof is kept per (document, version) (logserver/readcache.py).
"""

import logging

from logserver import api
from logserver.readcache import ReadCache
from logserver.statusindexer import read_plan
from logserver.statusstore import StatusStore
from logserver.storage import Storage
from tlogcore.errors import MalformedError
from tlogcore.statusindex_nodes import PathPlan

log = logging.getLogger("logserver.statuslookup")


async def status_index_proof(
    storage: Storage, store: StatusStore, document: bytes, published: bytes | None, cache: ReadCache
) -> api.StatusIndexProof | None:
    """The record and proof of `document` under the newest logged index root in `published`, the newest published
    checkpoint (read once by the caller, for the bundles too)."""
    if published is None:
        return None
    version = await store.newest_logged(cache.published_size(published))
    if version is None or version.entry is None:
        return None
    key = (document, version)
    found = cache.status_proofs.get(key)
    if found is not None:
        return found
    try:
        plan = await read_plan(store, PathPlan([document], version.size), version.size)
        record, proof = plan.lookup(document)
    except MalformedError as exc:  # IndexStorageError included: stored rows that contradict each other
        # The server's damage, not the client's bad request: the statements are still answered with their proofs;
        # without a status proof every verifier says the status is not proven. The index is derived from the log
        # alone, so a copy rebuilt from it mends this (docs/status-proofs.md §6).
        if cache.damaged_index_reported(version):
            log.error("status index damaged at size %d (%s): lookups carry no status proof", version.size, exc)
        return None
    statement = (await storage.get_entries(version.entry, version.entry + 1))[0]
    answer = api.StatusIndexProof(
        version.size,
        version.root,
        record.to_bytes() if record is not None else None,
        proof.to_bytes(),
        api.IndexRootEntry(version.entry, statement),
    )
    return cache.status_proofs.put(key, answer)
