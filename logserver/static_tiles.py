"""Static tiles: a plain directory holding the log's whole read path, kept in step with the database.

Under `tiles_dir` the log writes exactly the paths it serves dynamically (c2sp.org/tlog-tiles@v0.1.0):
`checkpoint`, `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`, byte for byte the bodies of
`GET /checkpoint` and `GET /tile/...` (the same `TileReader` derives them), so nginx or a CDN can serve reads
without touching the database.

Rules, and why:
- Only what the database has committed AND published is written: the tiles of the published checkpoint's size,
  then that checkpoint. The directory can lag the database, never lead it.
- Every file is written atomically (temporary file in the same directory, fsync, rename), the directories are
  fsync'd, and only then is `checkpoint` replaced: a reader never sees a checkpoint whose tiles are missing.
- Full tiles are written once and never rewritten. Partial tiles stay while their tile is partial, because
  "logs must serve the partial tiles of every size they published a checkpoint for" (tlog-tiles); once the full
  tile exists and a checkpoint covering it is in place, the tile's `.p/` directory is deleted ("may delete them
  once the full tile exists"; clients fall back to the full tile). Keeping them forever would cost about 128
  times the size of the full tiles.
- `checkpoint` never moves back to a smaller size (a second writer, or a database restored from a backup,
  cannot roll the directory back).

`plan_growth` is the pure part: which files a tree of size B has that one of size A had not.
`StaticTiles` is the I/O part: it reads bodies from storage and writes them, off the sequencer's commit path.
"""

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from logserver.proofs import TileReader
from logserver.storage import Storage, StorageError
from tlogcore.checkpoint import Checkpoint, parse_checkpoint
from tlogcore.encoding import HASH_SIZE
from tlogcore.errors import TlogError
from tlogcore.note import parse_note
from tlogcore.tileauth import TreeMismatch, TreeView, bundle_of
from tlogcore.tiles import ENTRIES_LEVEL, MAX_LEVEL, TILE_HEIGHT, TILE_WIDTH, Tile

log = logging.getLogger("logserver.static_tiles")

CHECKPOINT = "checkpoint"
FILE_MODE = 0o644  # served by a web server running as another user
DIR_MODE = 0o755
WRITE_THREADS = 8
PARALLEL_FROM = 8  # files; fewer are written one by one (threads cost more than they save)
CHUNK = 512  # tiles read and written per step


class StaticTilesError(Exception):
    """The tiles directory cannot be used (not writable, or holds another log or a bigger tree)."""


# --- the pure plan ----------------------------------------------------------------------------------------


def _count(level: int, size: int) -> int:
    """How many hashes (entries, for bundles) a tree of `size` has at tile level `level`."""
    return size if level == ENTRIES_LEVEL else size >> (TILE_HEIGHT * level)


def _levels(size: int) -> Iterator[int]:
    """Entry bundles first, then every hash-tile level a tree of `size` has."""
    yield ENTRIES_LEVEL
    level = 0
    while level <= MAX_LEVEL and _count(level, size):
        yield level
        level += 1


@dataclass(frozen=True)
class GrowthPlan:
    """What the directory needs when the tree grows from `old_size` to `new_size`."""

    old_size: int
    new_size: int
    write: tuple[Tile, ...]  # new full tiles, and the partial tiles of new_size
    completed: tuple[Tile, ...]  # tiles that became full: their old partials may go once the checkpoint moved

    @property
    def paths(self) -> list[str]:
        return [t.path for t in self.write]


def plan_growth(old_size: int, new_size: int) -> GrowthPlan:
    """Tiles and entry bundles a tree of `new_size` has and one of `old_size` had not (pure).

    A tile is new when it is full now and was not full then, or when it is the partial tile of `new_size` at a
    level whose count changed; tiles present at both sizes are byte-identical (the log is append-only).
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"cannot plan a tree growing from {old_size} to {new_size}")
    write: list[Tile] = []
    completed: list[Tile] = []
    for level in _levels(new_size):
        old_count, new_count = _count(level, old_size), _count(level, new_size)
        if old_count == new_count:
            continue
        full = [Tile(level, n) for n in range(old_count // TILE_WIDTH, new_count // TILE_WIDTH)]
        write += full
        completed += [t for t in full if old_count > t.index * TILE_WIDTH]  # was partial at old_size
        if new_count % TILE_WIDTH:
            write.append(Tile(level, new_count // TILE_WIDTH, new_count % TILE_WIDTH))
    return GrowthPlan(old_size, new_size, tuple(write), tuple(completed))


def expected_length(tile: Tile) -> int | None:
    """A hash tile's exact length; None for an entry bundle (its length depends on the entries)."""
    return None if tile.is_entries else tile.width * HASH_SIZE


# --- files ------------------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(path: Path, touched: set[Path]) -> None:
    """mkdir -p, remembering every parent whose entries changed (they need an fsync too)."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, DIR_MODE)
        touched.add(directory.parent)


def _write_file(path: Path, data: bytes, touched: set[Path]) -> None:
    """Atomically replace `path`: a temporary file in the same directory, fsync'd, then renamed."""
    _make_dirs(path.parent, touched)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    touched.add(path.parent)


def write_tiles_then_checkpoint(root: Path, bodies: Sequence[tuple[str, bytes]], checkpoint: bytes | None) -> None:
    """Write `bodies` (path, bytes), make them durable, and only then replace the checkpoint (blocking I/O)."""
    touched: set[Path] = set()
    if len(bodies) < PARALLEL_FROM:
        for path, body in bodies:
            _write_file(root / path, body, touched)
        for directory in sorted(touched, key=lambda p: len(p.parts), reverse=True):
            _fsync_dir(directory)
    else:
        # Several files fsync'd at once are committed in one journal transaction: a catch-up or a big batch
        # costs a few disk flushes instead of one per file.
        with ThreadPoolExecutor(WRITE_THREADS) as threads:
            list(threads.map(lambda item: _write_file(root / item[0], item[1], touched), bodies))
            list(threads.map(_fsync_dir, sorted(touched, key=lambda p: len(p.parts), reverse=True)))
    if checkpoint is not None:
        touched.clear()
        _write_file(root / CHECKPOINT, checkpoint, touched)
        for directory in touched:
            _fsync_dir(directory)


def prune_partials(root: Path, completed: Sequence[Tile]) -> int:
    """Delete the `.p/` directories of tiles that are full now; returns how many were deleted."""
    pruned = 0
    for tile in completed:
        partials = root / (tile.path + ".p")
        if partials.is_dir():
            shutil.rmtree(partials, ignore_errors=True)
            pruned += 1
    return pruned


def check_writable(root: Path) -> None:
    """Create the directory if needed and prove a file can be written there; StaticTilesError otherwise."""
    try:
        _make_dirs(root, set())
        with tempfile.NamedTemporaryFile(dir=root, prefix=".probe-"):
            pass
    except OSError as exc:
        raise StaticTilesError(f"static tiles_dir {str(root)!r} is not a writable directory: {exc.strerror}") from exc


def read_checkpoint_file(root: Path) -> tuple[bytes, Checkpoint] | None:
    """The checkpoint the directory shows now; None when missing or unreadable (it will be rewritten)."""
    try:
        data = (root / CHECKPOINT).read_bytes()
        return data, parse_checkpoint(parse_note(data).text)
    except (OSError, TlogError):
        return None


def _needs_writing(root: Path, tile: Tile) -> bool:
    """Missing, or (hash tiles) not the length its width says: a damaged or truncated file."""
    try:
        length = (root / tile.path).stat().st_size
    except FileNotFoundError:
        return True
    want = expected_length(tile)
    return length == 0 if want is None else length != want


# --- keeping the directory in step --------------------------------------------------------------------------


@dataclass
class SyncResult:
    size: int  # the published size the directory now shows
    written: int  # tile and bundle files written
    checkpoint_written: bool
    pruned: int


@dataclass
class StaticTiles:
    """Keeps `root` in step with the storage's published checkpoint.

    `run()` is a background task: each `notify()` (after a commit, or after a witnessing round published a
    cosigned checkpoint) wakes it; wake-ups during a sync coalesce into one more sync at the newest size.
    `is_active` says whether this process is the sequencer: only the sequencer writes.
    """

    storage: Storage
    root: Path
    is_active: Callable[[], bool] = lambda: True
    poll_interval: float = 1.0  # also re-check on this period (a process that takes over sequencing catches up)
    synced_size: int | None = None  # the size whose files are all in place; None: scan everything next time
    last_checkpoint: bytes | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._reader = TileReader(self.storage, cache_bytes=0)  # each full tile is written once: no cache

    def notify(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            if self.is_active():
                try:
                    await self.sync()
                except (StorageError, StaticTilesError, OSError) as exc:
                    log.error("static tiles: %s (retrying)", exc)
                    self.synced_size = None  # rescan once it works again
                except Exception:  # the writer must outlive any one failure; the database stays the truth
                    log.exception("static tiles: sync failed (retrying)")
                    self.synced_size = None
            else:
                self.synced_size = None  # another process writes now; rescan if we take over
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation (SIGTERM) that lands as
            # the event is set, and the loop would run on (monitor/commands.py has the test that showed it).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()
            self._wake.clear()

    async def sync(self, verify: bool = False) -> SyncResult:
        """Bring the directory up to the published checkpoint. The first sync (and `verify`) checks every file
        the tree needs (`verify`: byte for byte); later ones write only what grew since the last."""
        published = await self.storage.latest_published()
        if published is None:
            return SyncResult(0, 0, False, 0)
        checkpoint = parse_checkpoint(parse_note(published).text)
        if published == self.last_checkpoint and not verify:
            return SyncResult(checkpoint.size, 0, False, 0)
        full_scan = verify or self.synced_size is None or self.synced_size > checkpoint.size
        plan = plan_growth(0 if full_scan else self.synced_size or 0, checkpoint.size)
        shown, tiles = await asyncio.to_thread(self._survey, plan.write, full_scan, verify)
        if shown is not None:
            self._refuse_rollback(shown[1], checkpoint)
        new_checkpoint = published if shown is None or shown[0] != published else None
        # After a full scan any full tile may still have partials left by a crash before pruning.
        completed = [t for t in plan.write if not t.is_partial] if full_scan else list(plan.completed)
        # A catch-up of a big log holds one chunk in memory at a time; the last chunk also moves the checkpoint.
        chunks = [tiles[i : i + CHUNK] for i in range(0, len(tiles), CHUNK)] or [[]]
        written = pruned = 0
        for number, chunk in enumerate(chunks):
            bodies = [(t.path, await self._reader.read(t)) for t in chunk]
            last = number == len(chunks) - 1
            count, pruned = await asyncio.to_thread(
                apply_files, self.root, bodies, verify, new_checkpoint if last else None, completed if last else []
            )
            written += count
        self.synced_size, self.last_checkpoint = checkpoint.size, published
        if verify:  # and then read back as a client would: every file must hash up to the checkpoint's root
            await asyncio.to_thread(authenticate_directory, self.root)
        return SyncResult(checkpoint.size, written, new_checkpoint is not None, pruned)

    def _refuse_rollback(self, shown: Checkpoint, published: Checkpoint) -> None:
        if shown.origin != published.origin:
            raise StaticTilesError(f"{self.root / CHECKPOINT} is a checkpoint of {shown.origin!r}, not of this log")
        if shown.size > published.size:
            raise StaticTilesError(
                f"{self.root / CHECKPOINT} shows size {shown.size}, beyond the published {published.size}: "
                "not rolling it back (was the database restored from a backup?)"
            )

    def _survey(
        self, tiles: Sequence[Tile], full_scan: bool, verify: bool
    ) -> tuple[tuple[bytes, Checkpoint] | None, list[Tile]]:
        """(Blocking) the checkpoint the directory shows, and which of `tiles` to write."""
        shown = read_checkpoint_file(self.root)
        if verify:
            return shown, list(tiles)
        if full_scan:
            return shown, [t for t in tiles if _needs_writing(self.root, t)]
        # Growth: a file already there came from an interrupted sync or another writer, with the same bytes.
        return shown, [t for t in tiles if not (self.root / t.path).exists()]


def apply_files(
    root: Path,
    bodies: Sequence[tuple[str, bytes]],
    only_differing: bool,
    checkpoint: bytes | None,
    completed: Sequence[Tile],
) -> tuple[int, int]:
    """(Blocking) write the tiles, then the checkpoint, then prune; returns (files written, `.p/` pruned)."""
    if only_differing:
        bodies = _differing(root, bodies)
    write_tiles_then_checkpoint(root, bodies, checkpoint)
    return len(bodies), prune_partials(root, completed)


def _differing(root: Path, bodies: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The bodies whose file is missing or holds other bytes."""
    out = []
    for path, body in bodies:
        try:
            same = (root / path).read_bytes() == body
        except OSError:
            same = False
        if not same:
            out.append((path, body))
    return out


def authenticate_directory(root: Path) -> int:
    """(Blocking) Read the directory back as a client would and authenticate it against its `checkpoint` file
    (tlogcore.tileauth): every hash tile and entry bundle of that size must hash up to the checkpoint's root.
    Returns the number of entries checked; StaticTilesError names the first file that is missing or wrong.
    One chunk of level-0 tiles is held at a time, so a big log is checked in flat memory."""
    shown = read_checkpoint_file(root)
    if shown is None:
        return 0
    checkpoint = shown[1]
    view = TreeView(checkpoint.size, checkpoint.root)
    hash_tiles = [t for t in plan_growth(0, checkpoint.size).write if not t.is_entries]
    level0 = [t for t in hash_tiles if t.level == 0 and not t.is_partial]
    try:
        view.add({t.path: _read_tile(root, t) for t in hash_tiles if t not in level0})  # the root, upper levels
        for start in range(0, len(level0), CHUNK):
            chunk = level0[start : start + CHUNK]
            view.add({t.path: _read_tile(root, t) for t in chunk})
            for tile in chunk:
                view.entries(tile, _read_tile(root, bundle_of(tile)))
            view.drop(chunk)
        edge = [t for t in hash_tiles if t.level == 0 and t.is_partial]
        for tile in edge:
            view.entries(tile, _read_tile(root, bundle_of(tile)))
    except TreeMismatch as exc:
        evidence = exc.evidence
        files = evidence.get("bundle") or evidence.get("tile") or " or ".join(evidence.get("tiles", {}))
        raise StaticTilesError(f"{root}: {files}: {exc}; run export-tiles --verify again") from None
    return checkpoint.size


def _read_tile(root: Path, tile: Tile) -> bytes:
    try:
        return (root / tile.path).read_bytes()
    except OSError as exc:
        raise StaticTilesError(f"{root / tile.path}: cannot read it ({exc.strerror or exc})") from None
