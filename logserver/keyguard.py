"""The log key guard: the log key never signs two different trees of one size, nor a tree smaller than one it has
signed, whatever happens to the database (c2sp.org/tlog-checkpoint: "The log MUST never sign two checkpoints
between which no consistency proof can be made"). docs/key-guard.md is the operator's side of it.

The database cannot be the only witness of what the key signed: it can be lost, truncated, or replaced by an older
backup, and a log that starts over from it would sign a second tree for a size it has already published. So the
signing side keeps its own record, beside the key (`log.key.signed`, a small JSON file):

- `newest`: the newest tree head the key signed that is known to be in the database;
- `pending`: a tree head signed and about to be committed (written, fsync'd, *before* the commit that publishes
  it; cleared once the commit's outcome is known).

Rules (`check_signing`, `reconcile`, pure): sign only a tree that is bigger than `newest` and extends it, or is
`newest` itself. At start and at takeover the database must hold `newest` (same root at that size, checked from the
stored hashes); a `pending` head the database does not hold was never published (the commit is the only way out of
this process) and is dropped. Witnesses and the static tiles directory are asked too (`ExternalHead`): a checkpoint
signed by this key that the database does not hold means the database is behind or beside what was published.

Writes are atomic and durable: temporary file, fsync, rename, fsync of the directory.
"""

import asyncio
import json
import os
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from logserver.storage import Head, Storage
from tlogcore import merkle
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.errors import TlogError
from tlogcore.keys import Verifier
from tlogcore.note import open_note

RECORD_NAME = "log.key.signed"  # beside log.key in --data
RECOVER_HINT = "restore the newer database, or rebuild it with tlog-server recover (docs/key-guard.md)"


class ForkRefused(Exception):
    """Signing now could fork the log: the message is one line saying what was found and the way out."""


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes

    def __str__(self) -> str:
        return f"size {self.size} (root {self.root.hex()[:16]}…)"


@dataclass(frozen=True)
class SignedRecord:
    newest: TreeHead | None = None
    pending: TreeHead | None = None


@dataclass(frozen=True)
class ExternalHead:
    """The newest checkpoint of this log another place holds (a witness, the static tiles directory)."""

    source: str
    head: TreeHead


EMPTY_TREE = TreeHead(0, merkle.EMPTY_ROOT)


def head_of(head: Head) -> TreeHead:
    return TreeHead(head.size, head.root)


# --- pure rules ---------------------------------------------------------------------------------------------


def check_signing(record: SignedRecord, extends: TreeHead | None, new: TreeHead, where: str) -> None:
    """May the key sign `new`, a tree extending `extends` (None: the empty database)? ForkRefused if not."""
    newest = record.newest
    if newest is None:
        return
    if new.size < newest.size:
        raise ForkRefused(
            f"refusing to sign size {new.size}: the log key has signed {newest} ({where}); {RECOVER_HINT}"
        )
    if new.size == newest.size:
        if new.root != newest.root:
            raise ForkRefused(
                f"refusing to sign a second tree of size {new.size}: the log key signed {newest} ({where})"
            )
        return
    if extends is None or extends.size < newest.size or (extends.size == newest.size and extends.root != newest.root):
        raise ForkRefused(f"refusing to sign size {new.size}: it does not extend {newest} the key signed ({where})")


def record_to_json(record: SignedRecord) -> bytes:
    def one(head: TreeHead | None) -> dict[str, object] | None:
        return None if head is None else {"size": head.size, "root": head.root.hex()}

    return json.dumps({"newest": one(record.newest), "pending": one(record.pending)}).encode() + b"\n"


def record_from_json(data: bytes, where: str) -> SignedRecord:
    def one(value: object) -> TreeHead | None:
        if value is None:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("size"), int) or not isinstance(value["root"], str):
            raise ValueError("want {size, root}")
        root = bytes.fromhex(value["root"])
        if value["size"] < 0 or len(root) != 32:
            raise ValueError("size or root out of range")
        return TreeHead(value["size"], root)

    try:
        document = json.loads(data)
        return SignedRecord(one(document["newest"]), one(document["pending"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ForkRefused(f"{where} is damaged ({exc}): restore it from a backup of the log key") from None


def verified_head(note: bytes, origin: str, verifier: Verifier | Sequence[Verifier]) -> TreeHead | None:
    """The tree head of a checkpoint note if the log key signed it for this origin, else None.

    A rotated log passes all its keys (logkeys.py): whichever signed the note, it is this log's tree."""
    try:
        checkpoint = parse_checkpoint(open_note(note, [verifier] if isinstance(verifier, Verifier) else verifier).text)
    except TlogError:
        return None
    return TreeHead(checkpoint.size, checkpoint.root) if checkpoint.origin == origin else None


# --- the record on disk -------------------------------------------------------------------------------------


class RecordFile:
    """The record as a file: read at start, replaced atomically and durably on each change."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> SignedRecord | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return record_from_json(data, str(self.path))

    def write(self, record: SignedRecord) -> None:
        directory = self.path.parent
        fd, temporary = tempfile.mkstemp(prefix=".signed-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(record_to_json(record))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class MemoryRecord:
    """The record kept in memory only: the same rules within one process (in-process tests and benchmarks)."""

    def __init__(self) -> None:
        self.record: SignedRecord | None = None
        self.path = Path("<memory>")

    def read(self) -> SignedRecord | None:
        return self.record

    def write(self, record: SignedRecord) -> None:
        self.record = record


ExternalSources = Callable[[], Awaitable[list[ExternalHead]]]


async def _no_sources() -> list[ExternalHead]:
    return []


class KeyGuard:
    """The sequencer's guard around every signature of the log key (see the module doc)."""

    def __init__(
        self,
        origin: str,
        verifier: Verifier | Sequence[Verifier],  # every key of the log: one record covers them all (logkeys.py)
        store: RecordFile | MemoryRecord | None = None,
        external: ExternalSources = _no_sources,
    ) -> None:
        self.origin, self.verifier = origin, verifier
        self.store = store if store is not None else MemoryRecord()
        self.external = external
        self.record = SignedRecord()

    @property
    def where(self) -> str:
        return f"recorded in {self.store.path}"

    async def _write(self, record: SignedRecord) -> None:
        await asyncio.to_thread(self.store.write, record)
        self.record = record

    async def reconcile(self, storage: Storage, head: Head | None) -> None:
        """At start and at takeover: the database must hold every tree the key is known to have signed."""
        record = await asyncio.to_thread(self.store.read)
        if record is None:  # first start with this key file (or an upgrade): the database's head is the start
            signed = verified_head(head.checkpoint, self.origin, self.verifier) if head is not None else None
            record = SignedRecord(signed)
        if record.pending is not None:  # a crash or a failed commit: did the commit happen?
            committed = head is not None and await holds(storage, head, record.pending)
            # If not, that signature never left this process (the commit is its only way out): forget it.
            record = SignedRecord(record.pending if committed else record.newest)
        await self._check_database(storage, head, record)
        for found in await self.external():
            await self._check_external(storage, head, found)
        newest = record.newest
        if head is not None and (newest is None or head.size > newest.size):
            newest = verified_head(head.checkpoint, self.origin, self.verifier) or newest
        await self._write(SignedRecord(newest))

    async def _check_database(self, storage: Storage, head: Head | None, record: SignedRecord) -> None:
        newest = record.newest
        if newest is None or newest == EMPTY_TREE:  # the empty tree has one root: signing it again forks nothing
            return
        if head is None or head.size < newest.size:
            held = f"size {head.size}" if head is not None else "no tree"
            raise ForkRefused(
                f"refusing to sign: the log key has signed {newest}, {self.where}, but the database holds {held}; "
                + RECOVER_HINT
            )
        if not await holds(storage, head, newest):
            raise ForkRefused(
                f"refusing to sign: the database holds another tree than the {newest} the log key signed, "
                f"{self.where}; {RECOVER_HINT}"
            )

    async def _check_external(self, storage: Storage, head: Head | None, found: ExternalHead) -> None:
        if found.head == EMPTY_TREE:
            return
        size = head.size if head is not None else -1
        if found.head.size > size:
            raise ForkRefused(
                f"refusing to sign: {found.source} holds {found.head} signed by this log key but the database holds "
                f"size {max(size, 0)}; {RECOVER_HINT}"
            )
        if head is not None and not await holds(storage, head, found.head):
            raise ForkRefused(
                f"refusing to sign: {found.source} holds {found.head} signed by this log key and the database holds "
                f"another tree at that size; {RECOVER_HINT}"
            )

    async def before_publish(self, extends: Head | None, new: Head) -> None:
        """After signing `new`, before the commit that publishes it: refuse a fork, then record it durably."""
        check_signing(self.record, head_of(extends) if extends else None, head_of(new), self.where)
        await self._write(replace(self.record, pending=head_of(new)))

    async def committed(self, new: Head) -> None:
        await self._write(SignedRecord(head_of(new)))

    async def abandoned(self) -> None:
        """The commit certainly stored nothing (another process's head won the compare-and-swap)."""
        await self._write(replace(self.record, pending=None))

    async def followed(self, head: Head) -> None:
        """A standby saw the sequencing process publish `head`: remember it, so a takeover is checked against it."""
        newest = self.record.newest
        if newest is not None and head.size <= newest.size:
            return
        signed = verified_head(head.checkpoint, self.origin, self.verifier)
        if signed is not None:
            await self._write(SignedRecord(signed))


async def holds(storage: Storage, head: Head, tree: TreeHead) -> bool:
    """Whether the database's tree (up to `head`) has root `tree.root` at size `tree.size`."""
    if tree.size > head.size:
        return False
    if tree.size == head.size:
        return tree.root == head.root
    if tree.size == 0:
        return tree.root == merkle.EMPTY_ROOT
    plan = merkle.root_plan(tree.size)
    try:
        hashes = await storage.get_hashes(plan.stored_indexes)
    except KeyError:
        return False
    return plan.assemble(hashes)[0] == tree.root
