"""The SQLite lookup tables in their own file (logserver/sqlite_schema.py): a merge never holds the lock a commit
needs, and the file is rebuilt or trimmed at open whatever happened to it (lost, behind, ahead of a restored
log.db), a log with the lookup tables inside log.db moves them out, and the merger keeps the WALs of both files
bounded."""

import asyncio
import contextlib
import itertools
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from test_lookup_merge import append, check_lookups, record

from logserver import sqlite as sqlite_storage
from logserver.sqlite import SQLiteStorage, hash_key
from logserver.sqlite_schema import lookup_path
from logserver.storage import EntryRecord
from tlogcore.merkle import leaf_hash


def other_record(i: int) -> EntryRecord:
    data = b"log.example\nissue\nanother log's entry %d\n" % i
    return EntryRecord(data, leaf_hash(data), None, False)


def test_a_commit_does_not_wait_for_a_merge_holding_the_lookup_file(tmp_path: Path) -> None:
    async def scenario() -> None:
        path = tmp_path / "log.db"
        storage = await SQLiteStorage.open(path, busy_timeout_ms=300)
        try:
            records = [record(i) for i in range(40)]
            now = await append(storage, [], None)
            now = await append(storage, records[:20], now)
            merging = sqlite3.connect(lookup_path(path), isolation_level=None)
            merging.execute("BEGIN IMMEDIATE")  # what a merge holds while it writes the lookup tables
            merging.execute("UPDATE lookup_state SET merged = merged")
            now = await append(storage, records[20:], now)  # the commit goes on, no "database is locked"
            await check_lookups(storage, records)  # and so do the lookups, from the tail
            merging.execute("ROLLBACK")
            merging.close()
            assert await storage.merge_lookups(100) == 40
            await check_lookups(storage, records)
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_the_lookup_file_is_rebuilt_when_lost_and_trimmed_when_ahead_of_a_restored_log(tmp_path: Path) -> None:
    path, saved = tmp_path / "log.db", tmp_path / "backup.db"
    records = [record(i) for i in range(50)]

    async def grow() -> None:
        storage = await SQLiteStorage.open(path)
        try:
            now = await append(storage, [], None)
            now = await append(storage, records[:30], now)
            backup = sqlite3.connect(saved)
            storage._reader.backup(backup)  # what docs/operating.md does: the log database alone
            backup.close()
            await append(storage, records[30:], now)
            assert await storage.merge_lookups(100) == 50
        finally:
            await storage.close()

    async def restored() -> None:
        storage = await SQLiteStorage.open(path)  # log.db holds 30 leaves; the lookup file knew 50
        try:
            assert await storage.lookup_watermark() == 30
            await check_lookups(storage, records[:30])
            now = await storage.head()
            others = [other_record(i) for i in range(30, 50)]  # the log goes on with other entries
            await append(storage, others, now)
            found = await storage.find_leaves([r.leaf_hash for r in records[30:] + others])
            assert found == {r.leaf_hash: 30 + i for i, r in enumerate(others)}
        finally:
            await storage.close()

    async def rebuilt() -> None:
        storage = await SQLiteStorage.open(path)
        try:
            assert await storage.lookup_watermark() == 50
            await check_lookups(storage, records[:30])
        finally:
            await storage.close()

    asyncio.run(grow())
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copy(saved, path)
    asyncio.run(restored())
    for suffix in ("", "-wal", "-shm"):
        Path(f"{lookup_path(path)}{suffix}").unlink(missing_ok=True)
    asyncio.run(rebuilt())


PREVIOUS_LAYOUT = """
CREATE TABLE leaves (idx INTEGER PRIMARY KEY, data BLOB NOT NULL, leaf_key INTEGER NOT NULL, document_key INTEGER,
    registry INTEGER NOT NULL);
CREATE TABLE leaf_lookup (key INTEGER NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (key, idx)) WITHOUT ROWID;
CREATE TABLE document_lookup (key INTEGER NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (key, idx)) WITHOUT ROWID;
CREATE TABLE lookup_state (id INTEGER PRIMARY KEY CHECK (id = 1), merged INTEGER NOT NULL);
INSERT INTO lookup_state (id, merged) VALUES (1, 0);
"""


def test_lookup_tables_inside_log_db_move_to_their_own_file(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    records = [record(i) for i in range(30)]
    db = sqlite3.connect(path)
    db.executescript(PREVIOUS_LAYOUT)
    db.executemany(
        "INSERT INTO leaves VALUES (?, ?, ?, ?, 0)",
        [
            (
                i,
                r.data,
                int.from_bytes(r.leaf_hash[:8], "big", signed=True),
                None if r.document is None else int.from_bytes(r.document[:8], "big", signed=True),
            )
            for i, r in enumerate(records)
        ],
    )
    db.execute("INSERT INTO leaf_lookup SELECT leaf_key, idx FROM leaves WHERE idx < 10")
    db.execute("UPDATE lookup_state SET merged = 10")
    db.commit()
    db.close()

    async def scenario() -> None:
        storage = await SQLiteStorage.open(path)
        try:
            assert await storage.lookup_watermark() == 30
            await check_lookups(storage, records)
        finally:
            await storage.close()

    asyncio.run(scenario())
    db = sqlite3.connect(path)
    left = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert left.isdisjoint({"leaf_lookup", "document_lookup", "lookup_state"}) and "leaves" in left


def wal_generation(wal: Path) -> int:
    """The WAL header's checkpoint sequence number (sqlite.org/fileformat.html "WAL File Format", bytes 12-15): one
    more each time the WAL starts over from its beginning."""
    with wal.open("rb") as file:
        header = file.read(16)
    assert len(header) == 16, f"{wal} has no header: {len(header)} bytes"
    return int.from_bytes(header[12:16], "big")


def test_merges_keep_the_lookup_files_write_ahead_log_bounded_and_its_blocks(tmp_path: Path) -> None:
    """The merger turns off automatic checkpoints on its connection, which holds both files: it must checkpoint the
    lookup file too, or that file's write-ahead log grows with every merge, forever (3.1 GB at 1.9·10^6 entries in
    a growth run, beside a 37 MB lookup file). And it must start the WAL over without emptying it: a WAL truncated
    to 0 bytes gives its blocks back, and the next merge allocates them again (at 10^7 entries ext4's write_begin
    for new blocks took 17 % of the appending process)."""
    path = tmp_path / "log.db"
    wal = Path(str(lookup_path(path)) + "-wal")
    merges, per_merge = 12, 2_000

    async def scenario() -> list[tuple[int, int, int]]:
        storage = await SQLiteStorage.open(path)
        after = []  # after each merge: the WAL file's size, its generation, the pages in it (its frames)
        try:
            now = await append(storage, [], None)
            for m in range(merges):
                batch = [other_record(m * per_merge + i) for i in range(per_merge)]
                now = await append(storage, batch, now)
                assert await storage.merge_lookups(per_merge) == per_merge
                with contextlib.closing(sqlite3.connect(lookup_path(path))) as probe:
                    frames = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
                after.append((wal.stat().st_size, wal_generation(wal), frames))
        finally:
            await storage.close()
        return after

    after = asyncio.run(scenario())
    generations = [generation for _, generation, _ in after]
    # Each merge wrote from the WAL's start (a new generation), after the checkpoint before it: never appended.
    assert all(b == a + 1 for a, b in itertools.pairwise(generations)), after
    first = after[0][0]
    assert all(size >= first > 0 for size, _, _ in after), after  # its blocks kept, never given back
    largest = max(frames for _, _, frames in after)
    frame = sqlite_storage.WAL_FRAME_HEADER + 4096  # SQLite's default page size, the one these files have
    assert after[-1][0] <= 32 + largest * frame, after  # no more than the largest merge's pages (one header)


def read_all_the_time(path: Path, offset: float, stop: threading.Event) -> None:
    """A reader inside the log file's WAL most of the time: a snapshot held 50 ms, taken again at once (the
    server's readers hold theirs a statement long, and there are many)."""
    time.sleep(offset)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        while not stop.is_set():
            db.execute("BEGIN")
            db.execute("SELECT count(*) FROM leaves").fetchall()
            time.sleep(0.05)
            db.execute("COMMIT")


def test_merges_keep_the_log_files_write_ahead_log_bounded_while_readers_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proofs, tiles and the status indexer read the log file all the time, so under a steady load some reader is
    always inside its WAL, and SQLite's PASSIVE checkpoint never starts it over: it grew by every commit, 646 MB in
    a 120 s run at 10,000 entries/s. Here two readers take turns inside it through 24 commits and merges; the
    merger starts the WAL over once it passes its bound (made small here), so it stays near the bound, and keeps
    its blocks."""
    bound = 512 * 1024
    monkeypatch.setattr(sqlite_storage, "LOG_WAL_BOUND", bound)
    path = tmp_path / "log.db"
    wal = Path(str(path) + "-wal")
    merges, per_merge = 24, 2_000
    stop = threading.Event()
    generations: list[int] = []

    async def scenario() -> tuple[list[int], int]:
        storage = await SQLiteStorage.open(path)
        readers = [threading.Thread(target=read_all_the_time, args=(path, i * 0.025, stop)) for i in range(2)]
        sizes, grown = [], 0
        try:
            now = await append(storage, [], None)
            for reader in readers:
                reader.start()
            for m in range(merges):
                batch = [other_record(m * per_merge + i) for i in range(per_merge)]
                before = wal.stat().st_size
                now = await append(storage, batch, now)
                grown = max(grown, wal.stat().st_size - before)
                assert await storage.merge_lookups(per_merge) == per_merge
                sizes.append(wal.stat().st_size)
                generations.append(wal_generation(wal))
        finally:
            stop.set()
            for reader in readers:
                reader.join()
            await storage.close()
        return sizes, grown

    sizes, grown = asyncio.run(scenario())
    assert 0 < grown < bound, grown  # a commit does write to the WAL, less than the bound
    assert max(sizes) <= bound + 3 * grown, sizes  # a try may find a reader too slow; before: ~24 commits' worth
    # Started over from its beginning (a new generation) several times, its blocks kept (never emptied to 0 bytes).
    # Only past the bound, counted in the WAL's frames since it started, not its file's size, which no longer
    # shrinks: about every third merge here (each try holds the sequencer's next commit back).
    assert 2 <= generations[-1] - generations[0] <= merges // 2, generations
    reached = next(i for i, size in enumerate(sizes) if size > bound)
    assert min(sizes[reached:]) > bound, sizes


def test_leaves_cut_from_one_blob_keep_their_bytes_and_the_extreme_keys(tmp_path: Path) -> None:
    """A commit's leaves go in as one blob and one JSON array of offsets and keys (sqlite.INSERT_LEAVES): every
    leaf's bytes come back exact, and 64-bit keys at both ends of the range are stored as those integers and found,
    before and after a merge (a key read back as a REAL would never match)."""
    lowest, highest = b"\x80" + b"\x00" * 31, b"\x7f" + b"\xff" * 31  # keys -2**63 and 2**63 - 1

    def naming(document: bytes, digest: bytes) -> EntryRecord:
        data = b"log.example\nissue\ndocument " + document.hex().encode() + b"\n\x00\xff\r"
        return EntryRecord(data, digest, document, False)

    async def scenario() -> None:
        storage = await SQLiteStorage.open(tmp_path / "log.db")
        try:
            registry = EntryRecord(b"\x00\xff\r\n" * 3, leaf_hash(b"r"), None, True)
            records = [naming(lowest, highest), naming(highest, lowest), registry, record(3)]
            now = await append(storage, [], None)
            await append(storage, records, now)
            assert await storage.get_entries(0, 4) == [r.data for r in records]
            assert [e.index for e in await storage.registry_entries()] == [2]
            for _ in range(2):  # from the unmerged tail, then from the lookup tables
                found = await storage.documents_entries([highest, lowest])
                assert {d: [e.index for e in entries] for d, entries in found.items()} == {highest: [1], lowest: [0]}
                assert await storage.merge_lookups(10) in (4, 0)
            rows = storage._reader.execute(
                "SELECT typeof(leaf_key), leaf_key, typeof(document_key), document_key, registry FROM leaves"
                " ORDER BY idx"
            ).fetchall()
            assert rows[:3] == [
                ("integer", 2**63 - 1, "integer", -(2**63), 0),
                ("integer", -(2**63), "integer", 2**63 - 1, 0),
                ("integer", hash_key(leaf_hash(b"r")), "null", None, 1),
            ]
        finally:
            await storage.close()

    asyncio.run(scenario())
