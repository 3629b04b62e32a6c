"""Signing a batch of `issue` statements, in worker processes for big runs (issue 20: signing was the issuer
tool's largest CPU cost once lookups went in bulk).

Each task carries the key's name and seed and signs a slice of a batch; Ed25519 is deterministic, so where a
statement is signed never changes its bytes (a re-run after an interruption sends the identical statement, and
the log answers with its first entry: tools/submit.py).
"""

import asyncio
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from tlogcore.keys import Ed25519Signer
from tlogcore.note import sign_note
from tlogcore.statement import ISSUE, Statement
from witness.processes import exit_with_parent

Document = tuple[bytes, str | None]  # (SHA-256, ref)


def sign_issues(name: str, seed: bytes, origin: str, when: int, documents: Sequence[Document]) -> list[bytes]:
    """The signed `issue` statements of `documents`, in order (what tlogcore.statement.sign_statement gives,
    without deriving the verifier key again for every statement)."""
    signer = Ed25519Signer(name, seed)
    vkey = signer.verifier().vkey
    return [
        sign_note(Statement(origin, ISSUE, vkey, when, document=document, ref=ref).text, [signer])
        for document, ref in documents
    ]


class BatchSigner:
    """Signs batches in the event loop (`workers` = 0) or split over `workers` processes."""

    def __init__(self, signer: Ed25519Signer, origin: str, workers: int) -> None:
        self.name, self.seed, self.origin, self.workers = signer.name, signer.seed, origin, workers
        # Each worker exits when this process dies: after a kill -9 nobody shuts the pool down, and a worker
        # blocked on its task queue (it holds that pipe's write end too) would stay for ever.
        pool = ProcessPoolExecutor(workers, initializer=exit_with_parent, initargs=(os.getpid(),)) if workers else None
        self._pool = pool

    async def sign(self, when: int, documents: Sequence[Document]) -> list[bytes]:
        if self._pool is None:
            return sign_issues(self.name, self.seed, self.origin, when, documents)
        loop = asyncio.get_running_loop()
        step = -(-len(documents) // self.workers)
        parts = [documents[i : i + step] for i in range(0, len(documents), step)]
        signed = await asyncio.gather(
            *(loop.run_in_executor(self._pool, sign_issues, self.name, self.seed, self.origin, when, p) for p in parts)
        )
        return [statement for part in signed for statement in part]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def worker_count(documents: int, batch: int) -> int:
    """Processes worth starting: none for a run of one batch (starting them costs more than it saves)."""
    return 0 if documents <= batch else min(os.cpu_count() or 1, 4)
