"""The log's side of witnessing (c2sp.org/tlog-witness@v1.0.0): collect cosignatures, publish the checkpoint.

After each new checkpoint every configured witness is asked in parallel, with a
deadline on each whole request (a witness trickling its answer a byte at a time
never holds a round longer than timeout × (retries + 1)) and a few retries. A witness answers 409 with the size it
knows when our `old` is wrong (first contact, or after it missed checkpoints):
we resend with a consistency proof from that size. The cosignature lines we
get are checked against the witness's own key before they are attached; the
checkpoint is then published with whatever cosignatures arrived (verifiers
decide the quorum).

A 422 answer is an alarm, not a failure: the witness holds another tree for
this log, evidence of a fork or of a stolen log key (tlog-witness). It gets its
own log line, metric and `/api/v1/log` status, is not retried, and the evidence
(our checkpoint, the witness's answer and its newest checkpoint) is kept in
`evidence_dir`.

One round runs at a time; checkpoints made during a round are coalesced into
the next one, which uses the newest head. Rounds run as background tasks, so a
witness that is down or slow never stops or slows sequencing.
"""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logserver.config import WitnessConfig
from logserver.keyguard import ExternalHead, verified_head
from logserver.metrics import Histogram, Metrics
from logserver.proofs import consistency_proof
from logserver.storage import Head, Storage, StorageError
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.errors import TlogError
from tlogcore.keys import Verifier
from tlogcore.note import Note, open_note, parse_note
from tlogcore.vkeys import parse_verifier_key
from witness.client import ConflictError, WitnessClient, WitnessClientError

log = logging.getLogger("logserver.witnessing")
STANDBY_CHECK = 5.0  # seconds between a standby's looks at whether it took the lease over (`refresh`)


@dataclass
class WitnessState:
    config: WitnessConfig
    client: WitnessClient
    known_size: int = 0  # the size we believe the witness has cosigned; corrected by its 409 answers
    last_cosigned_size: int | None = None
    last_cosigned_at: float | None = None
    last_error: str | None = None
    alarm: dict[str, Any] | None = None  # the newest 422: the witness holds another tree for this log

    def status(self) -> dict[str, Any]:
        return {
            "alarm": self.alarm,
            "name": self.config.name,
            "url": self.config.url,
            "vkey": self.config.vkey,
            "vkeys": list(self.config.vkeys),  # every key of the witness (the published policy lists them all)
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
    timeout: float = 2.0  # seconds for one whole request, answer included
    evidence_dir: Path | None = None
    _next: Head | None = None
    _running: bool = False
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    _round_started: float = field(default_factory=time.monotonic)  # when the last round began (monotonic)

    @classmethod
    def create(
        cls,
        storage: Storage,
        configs: list[WitnessConfig],
        metrics: Metrics,
        timeout: float,
        retries: int,
        clock: Callable[[], float] = time.time,
        evidence_dir: Path | None = None,
    ) -> "Witnessing":
        states = [WitnessState(c, WitnessClient(c.url, timeout)) for c in configs]
        return cls(storage, states, metrics, retries, clock, timeout, evidence_dir)

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

    async def refresh(
        self, newest: Callable[[], Head | None], publish: Callable[[Head], Awaitable[None]], every: float
    ) -> None:
        """Send the newest checkpoint to the witnesses again whenever no round has run for `every` seconds: an
        idle log's checkpoint keeps its size, and without this its cosignatures grow old, until a verifier can no
        longer tell it from an older checkpoint replayed by a proxy (tlogcore/freshness.py). The same note, so the
        log key signs nothing new; each witness answers with a fresh cosignature (c2sp.org/tlog-witness:
        re-submitting the same size and root). `newest`: the head to send, None while this process does not
        sequence, which it asks every STANDBY_CHECK seconds: a process that takes the lease over sends its head at
        once (the former holder may have committed it unpublished); `publish`: what a commit calls (witnessing,
        then the static directory). Runs until cancelled."""
        standby = newest() is None
        due = every * random.uniform(0.9, 1.1)  # not on a beat an attacker on the witnesses' path could time
        while True:
            wait = STANDBY_CHECK if standby else self._round_started + due - time.monotonic()
            await asyncio.sleep(max(0.0, wait))
            if self._running:
                await self.wait_idle()
                continue
            head = newest()
            took_over, standby = standby and head is not None, head is None
            if head is None or (not took_over and time.monotonic() - self._round_started < due):
                continue  # a standby, or a round ran meanwhile: wait from its start
            due = every * random.uniform(0.9, 1.1)
            try:
                await publish(head)
            except Exception:  # this task must outlive any one round: log it, try again next time
                log.exception("refreshing the cosignatures of checkpoint %d failed", head.size)
                self._round_started = time.monotonic()

    async def _round(self, head: Head) -> None:
        self._round_started = time.monotonic()
        results = await asyncio.gather(*(self._cosign_guarded(w, head) for w in self.witnesses))
        note = parse_note(head.checkpoint)
        if not all(results):
            published = await self._published()
            if published is not None and not any(results) and published[0] > head.size:
                log.warning(
                    "checkpoint %d not published again: the log published %d since (another process sequences)",
                    head.size,
                    published[0],
                )
                return  # a process that lost the lease unawares: its round must not strip an older row
            results = self._keep_earlier(note, results, published[1] if published else None)
        signatures = list(note.signatures)
        for lines in results:
            signatures += parse_note(b"x\n\n" + "".join(lines).encode()).signatures if lines else []
        try:
            await self.storage.set_cosigned(head.size, Note(note.text, tuple(signatures)).to_bytes())
        except StorageError as exc:
            log.error("could not publish checkpoint %d: %s", head.size, exc)

    async def _published(self) -> tuple[int, Note] | None:
        """The newest published checkpoint's size and note, parsed; None if none, or unreadable (logged)."""
        try:
            published = await self.storage.latest_published()
        except StorageError as exc:
            log.warning("could not read the published checkpoint: %s", exc)
            return None
        if published is None:
            return None
        note = parse_note(published)
        return parse_checkpoint(note.text).size, note

    def _keep_earlier(self, note: Note, results: list[list[str]], published: Note | None) -> list[list[str]]:
        """For each witness that did not answer this round, its cosignature of this same checkpoint published
        earlier, if any: a refresh (the same note again) during a witness's outage must not take away the quorum
        the checkpoint already had. Each witness keeps only its newest lines, never two of one key."""
        if published is None or published.text != note.text:
            return results
        earlier = published.signatures
        kept = []
        for witness, lines in zip(self.witnesses, results, strict=True):
            keys = {(v.name, v.key_id) for v in map(parse_verifier_key, witness.config.vkeys)}
            own = [s.line for s in earlier if (s.name, s.key_id) in keys]
            kept.append(lines or own)
        return kept

    async def _cosign_guarded(self, witness: WitnessState, head: Head) -> list[str]:
        """`_cosign`, where anything unforeseen is that witness failing this round, not the round failing: one
        witness's strange answer must not keep the others' cosignatures from being published."""
        try:
            return await self._cosign(witness, head)
        except Exception as exc:  # logged with its traceback; the other witnesses go on
            witness.last_error = f"unexpected failure: {type(exc).__name__}"
            self.metrics.witness_failures[witness.config.name] += 1
            log.exception("witness %s: unexpected failure cosigning size %d", witness.config.name, head.size)
            return []

    async def _cosign(self, witness: WitnessState, head: Head) -> list[str]:
        started = time.perf_counter()
        for attempt in range(self.retries + 1):
            old = witness.known_size if witness.known_size <= head.size else 0
            try:
                proof = await consistency_proof(self.storage, old, head.size) if old else []
                async with asyncio.timeout(self.timeout):  # the whole request: per-read timeouts miss a trickle
                    lines = await witness.client.add_checkpoint(old, proof, head.checkpoint)
            except TimeoutError:
                witness.last_error = f"no complete answer within {self.timeout:g} s"
                continue
            except ConflictError as conflict:
                witness.known_size = conflict.known_size
                if conflict.known_size > head.size:
                    witness.last_error = f"witness knows size {conflict.known_size}, beyond ours ({head.size})"
                    break
                continue  # a 409 is an answer, not a failure: resend from the size it knows
            except WitnessClientError as exc:
                witness.last_error = str(exc)
                if exc.status == 422:
                    await self._alarm(witness, head, str(exc))
                    return []
                await asyncio.sleep(min(0.05 * 2**attempt, 0.5))
                continue
            except (StorageError, TlogError) as exc:
                witness.last_error = str(exc)
                await asyncio.sleep(min(0.05 * 2**attempt, 0.5))
                continue
            lines = self._genuine(witness, head, lines)
            if not lines:
                witness.last_error = "cosignature does not verify with the configured key"
                break
            witness.known_size = head.size
            witness.last_cosigned_size, witness.last_cosigned_at, witness.last_error = head.size, self.clock(), None
            self.metrics.witness_cosigned_at[witness.config.name] = witness.last_cosigned_at
            self.metrics.witness_latency.setdefault(witness.config.name, Histogram()).observe(
                time.perf_counter() - started
            )
            return lines
        self.metrics.witness_failures[witness.config.name] += 1
        log.warning("witness %s did not cosign size %d: %s", witness.config.name, head.size, witness.last_error)
        return []

    async def _alarm(self, witness: WitnessState, head: Head, answer: str) -> None:
        """422: the witness holds a tree this checkpoint is not consistent with. Never retried: say it loudly."""
        name = witness.config.name
        theirs = None
        try:
            async with asyncio.timeout(self.timeout):
                theirs = await witness.client.latest_checkpoint(parse_checkpoint_origin(head))
        except (WitnessClientError, TimeoutError) as exc:
            log.warning("witness %s: could not fetch its newest checkpoint as evidence: %s", name, exc)
        witness.alarm = {
            "size": head.size,
            "at": self.clock(),
            "answer": answer,
            "our_checkpoint": head.checkpoint.decode(),
            "witness_checkpoint": theirs.decode(errors="replace") if theirs is not None else None,
        }
        self.metrics.witness_alarms[name] += 1
        log.error(
            "ALARM: witness %s holds another tree for this log (422 on size %d): a fork or a stolen log key; "
            "evidence kept%s",
            name,
            head.size,
            f" in {keep_evidence(self.evidence_dir, name, witness.alarm)}" if self.evidence_dir else " in /api/v1/log",
        )

    @staticmethod
    def _genuine(witness: WitnessState, head: Head, lines: list[str]) -> list[str]:
        """The lines that verify with one of the witness keys we were configured with (Ed25519 and/or ML-DSA-44);
        a line by another key is not attached: we publish only what we checked."""
        try:
            verifiers = [parse_verifier_key(vkey) for vkey in witness.config.vkeys]
            text = parse_note(head.checkpoint).text.encode()
            opened = open_note(text + b"\n" + "".join(lines).encode(), verifiers)
        except TlogError:
            return []
        return [signature.line for signature, _ in opened.verified]


def keep_evidence(directory: Path, name: str, alarm: dict[str, Any]) -> Path | None:
    """Write a witness's 422 evidence to a file of its own in `directory`; None if that failed (logged)."""
    path = directory / f"witness-422-{name}-{alarm['size']}-{int(alarm['at'])}.txt"
    text = f"witness {name} answered: {alarm['answer']}\n\n-- our checkpoint --\n{alarm['our_checkpoint']}\n"
    text += f"-- the witness's newest checkpoint --\n{alarm['witness_checkpoint']}\n"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        log.error("could not keep the witness evidence in %s: %s", path, exc)
        return None
    return path


def parse_checkpoint_origin(head: Head) -> str:
    return parse_note(head.checkpoint).text.split("\n", 1)[0]


async def newest_from_witnesses(
    configs: list[WitnessConfig], timeout: float, origin: str, verifier: Verifier | Sequence[Verifier]
) -> list[ExternalHead]:
    """For the key guard at start and takeover: the newest checkpoint of this log each witness holds, signed by
    this log key. A witness that cannot be asked is skipped (it must not keep the log from starting)."""

    async def ask(config: WitnessConfig) -> ExternalHead | None:
        async with WitnessClient(config.url, timeout) as client:
            try:
                async with asyncio.timeout(timeout):
                    note = await client.latest_checkpoint(origin)
            except (WitnessClientError, TimeoutError) as exc:
                log.warning("could not ask witness %s for its newest checkpoint: %s", config.name, exc)
                return None
        head = verified_head(note, origin, verifier) if note is not None else None
        return ExternalHead(f"witness {config.name}", head) if head is not None else None

    found = await asyncio.gather(*(ask(c) for c in configs))
    return [f for f in found if f is not None]
