"""The log's side of witnessing (c2sp.org/tlog-witness@v1.0.0): collect cosignatures, publish the checkpoint.

After each new checkpoint every configured witness is asked in parallel, with a
timeout per request and a few retries. A witness answers 409 with the size it
knows when our `old` is wrong (first contact, or after it missed checkpoints):
we resend with a consistency proof from that size. The cosignature lines we
get are checked against the witness's own key before they are attached; the
checkpoint is then published with whatever cosignatures arrived (verifiers
decide the quorum).

One round runs at a time; checkpoints made during a round are coalesced into
the next one, which uses the newest head. Rounds run as background tasks, so a
witness that is down or slow never stops or slows sequencing.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from logserver.config import WitnessConfig
from logserver.metrics import Histogram, Metrics
from logserver.proofs import consistency_proof
from logserver.storage import Head, Storage, StorageError
from tlogcore.errors import TlogError
from tlogcore.note import Note, open_note, parse_note
from tlogcore.vkeys import parse_verifier_key
from witness.client import ConflictError, WitnessClient, WitnessClientError

log = logging.getLogger("logserver.witnessing")


@dataclass
class WitnessState:
    config: WitnessConfig
    client: WitnessClient
    known_size: int = 0  # the size we believe the witness has cosigned; corrected by its 409 answers
    last_cosigned_size: int | None = None
    last_cosigned_at: float | None = None
    last_error: str | None = None

    def status(self) -> dict[str, Any]:
        return {
            "name": self.config.name,
            "url": self.config.url,
            "vkey": self.config.vkey,
            "last_cosigned_size": self.last_cosigned_size,
            "last_cosigned_at": self.last_cosigned_at,
            "last_error": self.last_error,
        }


@dataclass
class Witnessing:
    storage: Storage
    witnesses: list[WitnessState]
    metrics: Metrics
    retries: int = 2
    clock: Callable[[], float] = time.time
    _next: Head | None = None
    _running: bool = False
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def create(
        cls,
        storage: Storage,
        configs: list[WitnessConfig],
        metrics: Metrics,
        timeout: float,
        retries: int,
        clock: Callable[[], float] = time.time,
    ) -> "Witnessing":
        states = [WitnessState(c, WitnessClient(c.url, timeout)) for c in configs]
        return cls(storage, states, metrics, retries, clock)

    def status(self) -> list[dict[str, Any]]:
        return [w.status() for w in self.witnesses]

    async def close(self) -> None:
        for witness in self.witnesses:
            await witness.client.aclose()

    async def on_checkpoint(self, head: Head) -> None:
        """Called by the sequencer after each commit; returns at once if a round is already running."""
        self._next = head
        if self._running:
            return
        self._running = True
        self._idle.clear()
        try:
            while self._next is not None:
                current, self._next = self._next, None
                await self._round(current)
        finally:
            self._running = False
            self._idle.set()

    async def wait_idle(self) -> None:
        if self._running:
            await self._idle.wait()

    async def _round(self, head: Head) -> None:
        results = await asyncio.gather(*(self._cosign(w, head) for w in self.witnesses))
        note = parse_note(head.checkpoint)
        signatures = list(note.signatures)
        for lines in results:
            signatures += parse_note(b"x\n\n" + "".join(lines).encode()).signatures if lines else []
        try:
            await self.storage.set_cosigned(head.size, Note(note.text, tuple(signatures)).to_bytes())
        except StorageError as exc:
            log.error("could not publish checkpoint %d: %s", head.size, exc)

    async def _cosign(self, witness: WitnessState, head: Head) -> list[str]:
        started = time.perf_counter()
        for attempt in range(self.retries + 1):
            old = witness.known_size if witness.known_size <= head.size else 0
            try:
                proof = await consistency_proof(self.storage, old, head.size) if old else []
                lines = await witness.client.add_checkpoint(old, proof, head.checkpoint)
            except ConflictError as conflict:
                witness.known_size = conflict.known_size
                if conflict.known_size > head.size:
                    witness.last_error = f"witness knows size {conflict.known_size}, beyond ours ({head.size})"
                    break
                continue  # a 409 is an answer, not a failure: resend from the size it knows
            except (WitnessClientError, StorageError, TlogError) as exc:
                witness.last_error = str(exc)
                await asyncio.sleep(min(0.05 * 2**attempt, 0.5))
                continue
            if not self._genuine(witness, head, lines):
                witness.last_error = "cosignature does not verify with the configured key"
                break
            witness.known_size = head.size
            witness.last_cosigned_size, witness.last_cosigned_at, witness.last_error = head.size, self.clock(), None
            self.metrics.witness_latency.setdefault(witness.config.name, Histogram()).observe(
                time.perf_counter() - started
            )
            return lines
        self.metrics.witness_failures[witness.config.name] += 1
        log.warning("witness %s did not cosign size %d: %s", witness.config.name, head.size, witness.last_error)
        return []

    @staticmethod
    def _genuine(witness: WitnessState, head: Head, lines: list[str]) -> bool:
        """Keep only lines that verify with the witness key we were configured with."""
        try:
            verifier = parse_verifier_key(witness.config.vkey)
            opened = open_note(parse_note(head.checkpoint).text.encode() + b"\n" + "".join(lines).encode(), [verifier])
        except TlogError:
            return False
        return opened.verified_by(verifier) is not None
