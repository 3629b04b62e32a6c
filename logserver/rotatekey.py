"""`tlog-server rotate-key`: a new log key for the same log (docs/thirty-years.md, "Log key rotation").

Run while no `tlog-server serve` sequences the log (it takes the sequencer's lease, like `serve`). In order:
1. make the new key in `log.key.<n>` beside `log.key` (kept if an earlier run stopped before step 3);
2. sign the `tlog-log-key/v1` statement with the current log key and the registry key (tlogcore/logkey.py),
   `from` = the size of the first tree that holds it, `until` = from + the overlap;
3. log it through the sequencer, which checks it (logkeys.py: `KeyRing.extended`) and signs that first tree with the
   new key and, during the overlap, the old one. The key guard's record (keyguard.py) is the same for both keys.
"""

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from logserver.identity import LogKeys, UsageError, write_key
from logserver.keyguard import ForkRefused
from logserver.logkeys import KeyRing, successor_key_path
from logserver.sequencer import NotSequencingError, Sequencer, Submission
from tlogcore.errors import NotAllowedError
from tlogcore.keys import Ed25519Signer, generate_ed25519_seed
from tlogcore.logkey import LogKeyRotation, sign_log_key_rotation
from tlogcore.merkle import leaf_hash


@dataclass(frozen=True)
class Rotated:
    statement: LogKeyRotation
    index: int
    key_file: str


def successor_for(sequencer: Sequencer, keys: LogKeys, data: Path) -> tuple[Ed25519Signer, str]:
    """The new key: the file of the next rotation if an interrupted run left it, else a new one."""
    ring = sequencer.keys
    logged = len(ring.rotations) if ring is not None else 0
    if len(keys.successors) > logged + 1:
        raise UsageError(
            f"{data} holds {len(keys.successors)} log.key.<n> files but the log announced {logged} "
            "rotations: remove the extra ones (never a logged one)"
        )
    path = successor_key_path(data, logged + 1)
    if len(keys.successors) == logged + 1:
        return keys.successors[logged], str(path)
    signer = Ed25519Signer(keys.log.name, generate_ed25519_seed())
    write_key(path, signer)
    return signer, str(path)


async def rotate(sequencer: Sequencer, keys: LogKeys, data: Path, overlap: int) -> Rotated:
    """Steps 1-3 of the module doc on a loaded sequencer that holds the lease."""
    ring = sequencer.keys
    if ring is None:
        raise UsageError("internal: the sequencer has no key ring")
    new, path = successor_for(sequencer, keys, data)
    ring = KeyRing(ring.first, ring.registry_vkey, (*keys.successors[: len(ring.rotations)], new), ring.rotations)
    sequencer.keys = ring
    start = sequencer.size + 1
    statement = LogKeyRotation(
        origin=keys.log.name,
        old=ring.current,
        new=new.verifier().vkey,
        registry=keys.registry.verifier().vkey,
        time=int(time.time()),
        start=start,
        until=start + overlap,
    )
    signed = sign_log_key_rotation(statement, ring.signer_of(ring.current), keys.registry)
    running = asyncio.create_task(sequencer.run())
    try:
        async with asyncio.timeout(60):
            sequenced = await sequencer.submit([Submission(signed, statement, leaf_hash(signed))])
    except (NotAllowedError, NotSequencingError) as exc:
        raise UsageError(f"the log refused the rotation: {exc}; the new key stays in {path} for the next try") from exc
    except TimeoutError:
        raise UsageError(f"the rotation was not logged within 60 s; the new key stays in {path}") from None
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    return Rotated(statement, sequenced[0].index, path)


async def take_lease(sequencer: Sequencer) -> None:
    try:
        held = await sequencer.take_lease()
    except ForkRefused as exc:
        raise UsageError(str(exc)) from exc
    if not held:
        raise UsageError(f"{sequencer.not_sequencing}: stop it first (rotate-key logs its statement itself)")
