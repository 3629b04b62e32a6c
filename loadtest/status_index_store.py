"""The status indexer's own update loop through real storage (issue 19; docs/status-proofs.md §11).

    .venv/bin/python -m loadtest.status_index_bench --store sqlite --sizes 1000000 --batches 10000,20000

At each size: the index of that many random documents is built in memory and stored as one version (not timed);
then, per batch size, `--updates` updates run exactly as the indexer runs them (logserver/statusindexer.py):
the issue statements parsed (`document_entries`), the paths read (`UpperLevels`: the top 16 depths in memory,
deeper rows a page per round), the update made page by page (tlogcore/statuspageupdate.py), and the commit,
which also deletes the rows the version before superseded (in the server a cycle later, also in an update's own
transaction: the "prune" phase stays 0). Each
phase is timed in wall seconds and in CPU seconds of this process (its threads included; PostgreSQL's own CPU is
its server's). Beside them, measured in the same run:
  - raw SHA-256/s over the SHA-256 calls per document the update made (the hashing bound);
  - the storage alone: the same rows, already encoded, inserted in one transaction and deleted in another, with
    no Python work around them (the storage bound of this row layout).
  - the Python alone (the same updates over page rows in a dict, no SQL), and under it the floor of this row
    layout in Python: the statements parsed, the pages read split, the pages written encoded and the SHA-256
    calls, redone alone (what any update logic over these rows pays before its own work).
Bytes on disk per document: the SQLite file after a checkpoint, or PostgreSQL's status_page with its index. On
SQLite, the bytes an update writes: its page rows as stored, beside what SQLite wrote for it (this process's
`write()` bytes, /proc/self/io `wchar`: the WAL, then its copy into the file), which an update of random keys
spreads over the file's pages. Prints figures; asserts nothing.
"""

import argparse
import asyncio
import hashlib
import os
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.localproc import bytes_written
from loadtest.looppauses import LoopPauses
from logserver.statuscompaction import NEWEST
from logserver.statusindexer import UpperLevels, document_entries
from logserver.statuspages import PagedNodes, encoded
from logserver.statusstore import IndexVersion, PostgresStatusStore, SQLiteStatusStore
from tlogcore.gcpause import paused_gc
from tlogcore.keys import Ed25519Signer
from tlogcore.statement import ISSUE, Statement, sign_statement
from tlogcore.statusindex_nodes import NodeId, PathPlan, StoredNode, read_paths
from tlogcore.statusindex_pages import STRIDE, Page, top_ranges
from tlogcore.statuspageset import PageSet, decoded
from tlogcore.statusrecord import new_record

PHASES = ("parse", "read", "apply", "commit", "prune")
ORIGIN = "bench.status.example"


@dataclass
class Phases:
    wall: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    documents: int = 0
    hashes: int = 0
    rows: int = 0
    pauses: LoopPauses = field(default_factory=LoopPauses)
    file_writes: int = 0  # SQLite: bytes this process wrote, the WAL copied into the file after each commit included

    async def timed(self, phase: str, work: Callable[[], Awaitable[Any]]) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        result = await work()
        self.wall[phase] += time.perf_counter() - wall
        self.cpu[phase] += time.process_time() - cpu
        return result


def statements(count: int, first_time: int, rng: random.Random, signer: Ed25519Signer) -> list[bytes]:
    """Issue statements as the log holds them (signed: the indexer parses them, without checking signatures)."""
    vkey = signer.verifier().vkey
    made = []
    for i in range(count):
        statement = Statement(ORIGIN, ISSUE, vkey, first_time + i, document=rng.randbytes(32))
        made.append(sign_statement(statement, signer))
    return made


async def open_store(engine: str, directory: Path, dsn: str | None) -> Any:
    if engine == "postgresql" and dsn is not None:
        return await PostgresStatusStore.open(dsn, timeout=600.0)  # the preload is one COPY of millions of rows
    # A new file, made as the server makes it (its page size is set before its WAL: 64 KiB; a file put in WAL mode
    # first took SQLite's 4 KiB, and this benchmark measured those until the twenty-fifth round).
    return await SQLiteStatusStore.open(directory / "index.db")


async def preload(store: Any, size: int, rng: random.Random) -> IndexVersion:
    """`size` random documents, stored as one version (the rows an index of that size holds)."""
    records = {rng.randbytes(32): new_record([i]) for i in range(size)}
    update = read_paths(PathPlan([]), {}).apply(records)
    version = IndexVersion(size, update.root, 1)
    await store.commit(None, version, update.writes)
    return version


async def one_update(
    store: Any, upper: UpperLevels, head: IndexVersion, datas: list[bytes], phases: Phases, prunes: list[Any]
) -> Any:
    """One indexer step at `head` over the entries `datas` (logged at head.size, head.size + 1, ...), deleting the
    rows `prunes` names in its commit's transaction (as StatusIndexer does)."""

    async def parse() -> Any:  # in a thread, as StatusIndexer.step does
        return (await asyncio.to_thread(document_entries, datas, head.size))[0]

    entries = await phases.timed("parse", parse)
    pages = PageSet(head.size)
    update = await phases.timed("read", lambda: upper.update(entries, head.size, pages))
    root, written = await phases.timed("apply", lambda: asyncio.to_thread(update.apply))
    pages.made(written)
    new = IndexVersion(head.size + len(datas), root, 1)
    await phases.timed("commit", lambda: store.commit(head, new, {}, pages, prunes))
    upper.committed(head.size, new.size, pages)
    phases.documents += len(entries)
    phases.hashes += update.hashes
    phases.rows += len(written)
    return new, pages.page_ids_written()  # the pages rewritten: what the prune deletes older rows of (as the indexer)


async def run_updates(
    store: Any, head: IndexVersion, batch: int, updates: int, rng: random.Random
) -> tuple[IndexVersion, Phases, list[bytes]]:
    """`updates` + 1 updates of `batch` documents; the first (it loads the kept top levels) is not counted."""
    signer = Ed25519Signer("issuer.bench.example", rng.randbytes(32))
    upper, phases, previous = UpperLevels(store), Phases(), None
    last_writes: list[bytes] = []
    for step in range(updates + 1):
        datas = statements(batch, 1_790_000_000 + head.size, rng, signer)
        counted = phases if step else Phases()
        ticker = asyncio.create_task(counted.pauses.run())
        written = bytes_written()
        with paused_gc():  # as StatusIndexer.step
            head, last_writes = await one_update(store, upper, head, datas, counted, [previous] if previous else [])
        ticker.cancel()
        if isinstance(store, SQLiteStatusStore):  # the WAL's checkpoint runs after the commit's answer: wait for it
            await asyncio.get_running_loop().run_in_executor(store._write_thread, lambda: None)
            counted.file_writes += bytes_written() - written
        previous = (head.size, last_writes)
    return head, phases, last_writes


def write_volume(batch: int, phases: Phases, updates: int, rows: list[tuple[bytes, bytes]]) -> str:
    """SQLite: what one update wrote (its page rows as stored; what SQLite wrote for them, its WAL and the copy)."""
    row_bytes = sum(len(page) + len(data) for page, data in rows)
    written = phases.file_writes / updates
    return (
        f"    bytes one update wrote: its {len(rows):,} page rows {row_bytes / 1e6:,.2f} MB "
        f"({row_bytes / batch:,.0f} B per document); SQLite (its WAL, then copied into the file) "
        f"{written / 1e6:,.2f} MB ({written / batch:,.0f} B per document, {written / max(row_bytes, 1):.1f} x the rows)"
    )


async def written_rows(store: Any, version: int) -> list[tuple[bytes, bytes]]:
    """The rows (page, data) the update to `version` wrote, as stored."""
    sql = "SELECT page, data FROM status_page WHERE version = {} ORDER BY page"
    if isinstance(store, SQLiteStatusStore):
        return [(bytes(p), bytes(d)) for p, d in store._reader.execute(sql.format("?"), (version,)).fetchall()]
    async with store._pool.acquire() as conn:
        return [(bytes(p), bytes(d)) for p, d in await conn.fetch(sql.format("$1"), version)]


async def storage_alone(store: Any, head: IndexVersion) -> tuple[float, float, int]:
    """Wall and CPU seconds to insert the rows of the last update (already encoded, as stored) at a new version in
    one transaction and delete them again in another (as a prune deletes as many; on SQLite, whose rows are kept in
    the order written, they are the table's last range, and compaction's copies are not counted): the storage's
    share of one update, no Python around it; and how many rows that is."""
    rows = [(page, head.size + 1, data) for page, data in await written_rows(store, head.size)]
    began, cpu = time.perf_counter(), time.process_time()
    if isinstance(store, SQLiteStatusStore):
        db = store._writer  # a plain connection, idle between updates: used here on this thread
        db.execute("BEGIN IMMEDIATE")
        (newest,) = db.execute(NEWEST).fetchone()
        db.executemany("INSERT INTO status_page (page, version, data) VALUES (?, ?, ?)", rows)
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")  # appended in the order written (statuscompaction.py): they are a range
        db.execute("DELETE FROM status_page WHERE seq > ?", (newest or 0,))
        db.execute("COMMIT")
    else:
        async with store._pool.acquire() as conn:
            async with conn.transaction():
                await conn.copy_records_to_table("status_page", records=rows, columns=["page", "version", "data"])
            async with conn.transaction():
                await conn.execute(
                    "DELETE FROM status_page WHERE page = ANY($1::bytea[]) AND version = $2",
                    [page for page, _, _ in rows],
                    head.size + 1,
                )
    return time.perf_counter() - began, time.process_time() - cpu, len(rows)


class MemoryPages:
    """The store's reads and commits over page rows held in a dict (the newest version only): the same Python as
    through storage (pages split, nodes parsed, pages merged and encoded) with no SQL. Its CPU per document is
    the bound of the indexer's Python alone."""

    def __init__(self, rows: dict[bytes, bytes]) -> None:
        self.rows = rows
        self._pages = PagedNodes(self._select)
        self._selected: list[tuple[bytes, bytes]] = []
        self.updates: list[tuple[list[tuple[bytes, bytes]], dict[NodeId, Page]]] = []  # per commit: rows read, written

    async def _select(self, pages: list[bytes], version: int) -> list[tuple[bytes, bytes]]:
        found = [(page, data) for page in pages if (data := self.rows.get(page)) is not None]
        self._selected += found
        return found

    async def read_nodes(self, ids: Any, version: int, pages: PageSet | None = None) -> dict[NodeId, StoredNode]:
        return await self._pages.nodes(ids, version, pages)

    async def read_pages(self, pages: Any, version: int, known: PageSet | None = None) -> dict[NodeId, Page]:
        return await self._pages.whole(pages, version, known)

    async def read_upper_rows(self, depth: int, version: int, half: int | None = None) -> list[tuple[bytes, bytes]]:
        ranges = top_ranges(depth, half)
        return [(page, data) for page, data in self.rows.items() if any(low <= page < high for low, high in ranges)]

    async def commit(self, old: Any, new: IndexVersion, writes: Any, pages: PageSet | None = None, _: Any = ()) -> None:
        rows = await self._pages.to_write(None if old is None else old.size, new.size, writes, pages)
        self.rows.update((page, data) for page, _, data in rows)
        self.updates.append((self._selected, pages.written if pages is not None else {}))
        self._selected = []

    async def prune(self, version: int, nodes: Any) -> None:
        pass


async def newest_rows(store: Any, version: int) -> dict[bytes, bytes]:
    sql = "SELECT page, data, MAX(version) FROM status_page WHERE version <= {} GROUP BY page"
    if isinstance(store, SQLiteStatusStore):
        return {bytes(p): bytes(d) for p, d, _ in store._reader.execute(sql.format("?"), (version,)).fetchall()}
    sql = "SELECT DISTINCT ON (page) page, data FROM status_page WHERE version <= $1 ORDER BY page, version DESC"
    async with store._pool.acquire() as conn:
        return {bytes(p): bytes(d) for p, d in await conn.fetch(sql, version)}


async def python_alone(
    store: Any, head: IndexVersion, batch: int, updates: int, rng: random.Random
) -> tuple[float, float]:
    """Documents per CPU second of the same updates with the rows in a dict (MemoryPages): the Python's bound;
    and the floor of this row layout under it (`layout_floor`), in CPU seconds per document."""
    memory = MemoryPages(await newest_rows(store, head.size))
    _, phases, _ = await run_updates(memory, head, batch, updates, rng)
    return phases.documents / sum(phases.cpu.values()), layout_floor(memory, phases)


def layout_floor(memory: MemoryPages, phases: Phases) -> float:
    """CPU seconds per document that any update over these page rows spends in Python whatever its own logic: the
    statements parsed (the phase as timed), the pages it read split, the pages it wrote encoded, and its SHA-256
    calls, each redone here alone over the counted updates' own rows (the first, uncounted one left out)."""
    began = time.process_time()
    with paused_gc():
        for read, written in memory.updates[1:]:
            decoded(read)
            encoded(written, 0)
        node = bytes(65)
        for _ in range(phases.hashes):
            hashlib.sha256(node).digest()
    return (time.process_time() - began + phases.cpu["parse"]) / phases.documents


def pages_of(store: Any) -> str:
    """SQLite: the file's page size, as the server makes it (statusstore.PAGE_BYTES)."""
    if not isinstance(store, SQLiteStatusStore):
        return ""
    return f", in SQLite pages of {store._reader.execute('PRAGMA page_size').fetchone()[0]:,} bytes"


async def bytes_on_disk(store: Any, directory: Path) -> int:
    if isinstance(store, SQLiteStatusStore):
        store._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(f.stat().st_size for f in directory.iterdir() if f.name.startswith("index.db"))
    async with store._pool.acquire() as conn:
        return int(await conn.fetchval("SELECT pg_total_relation_size('status_page')"))


def report(
    size: int, batch: int, phases: Phases, sha: float, alone: tuple[float, float, int], updates: int, sqlite: bool
) -> None:
    wall, cpu = sum(phases.wall.values()), sum(phases.cpu.values())
    per_doc = phases.hashes / phases.documents
    print(
        f"\n  one update of {batch:,} documents at {size:,}, {updates} updates ({phases.rows / phases.documents:.2f}"
        f" rows (pages of {STRIDE} levels) written per document):"
    )
    for phase in PHASES:
        print(f"    {phase:<8} {phases.wall[phase] / updates:7.3f} s wall  {phases.cpu[phase] / updates:7.3f} s CPU")
    hashing_bound = sha / per_doc
    storage_bound = batch / alone[0]
    print(
        f"    documents indexed/s, wall:           {phases.documents / wall:>12,.0f}"
        f"   {phases.documents / wall / hashing_bound:.3f} of the hashing bound"
    )
    print(f"    documents indexed per CPU second:    {phases.documents / cpu:>12,.0f}")
    print(f"    longest pause of the event loop during an update: {phases.pauses.longest * 1000:,.0f} ms")
    print(
        f"    ceiling: raw SHA-256/s {sha:,.0f} / {per_doc:.1f} SHA-256 per document = {hashing_bound:,.0f} documents/s"
    )
    print(
        f"    ceiling: the storage alone (the last update's {alone[2]:,} rows as stored, insert + delete):"
        f" {storage_bound:,.0f} documents/s"
        f"   (indexer at {phases.documents / wall / storage_bound:.3f} of it)"
    )
    if sqlite:
        print(f"      the same per CPU second of this process (SQLite runs in it): {batch / alone[1]:,.0f} documents/s")


async def measure(engine: str, sizes: list[int], batches: list[int], updates: int, dsn: str | None,
                  sha256_ceiling: Callable[[], float], server_cpu: Callable[[], float] | None) -> None:  # fmt: skip
    rng = random.Random(19)
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="status-index-") as name:
            directory = Path(name)
            store = await open_store(engine, directory, dsn)
            try:
                if engine == "postgresql":
                    await reset_postgres(store)
                began = time.perf_counter()
                head = await preload(store, size, rng)
                took = time.perf_counter() - began
                print(f"\nIndex of {size:,} documents in {engine} (built and stored in {took:.0f} s)")
                on_disk = await bytes_on_disk(store, directory)
                print(f"  bytes on disk per document: {on_disk / size:.1f} ({on_disk / 1e6:,.0f} MB{pages_of(store)})")
                for batch in batches:
                    sha = sha256_ceiling()
                    server_before = server_cpu() if server_cpu else 0.0
                    head, phases, _ = await run_updates(store, head, batch, updates, rng)
                    server = server_cpu() - server_before if server_cpu else 0.0
                    alone = await storage_alone(store, head)
                    report(size, batch, phases, sha, alone, updates, engine == "sqlite")
                    if engine == "sqlite":
                        print(write_volume(batch, phases, updates, await written_rows(store, head.size)))
                    if server_cpu:
                        all_in(phases, server, batch)
                    python, floor = await python_alone(store, head, batch, updates, rng)
                    print(f"    ceiling: the indexer's Python alone (the same updates, rows in a dict, no SQL): "
                          f"{python:,.0f} documents per CPU second = {1e6 / python:,.1f} us per document")  # fmt: skip
                    print(f"      of which the row layout's floor (statements parsed, pages read split, pages written "
                          f"encoded, SHA-256 calls; no update logic): {floor * 1e6:,.1f} us per document")  # fmt: skip
            finally:
                await store.close()


def all_in(phases: Phases, server: float, batch: int) -> None:
    """The budget counts the database server's CPU too (PostgreSQL runs beside the indexer on the same cores).
    The server's CPU is read over all the updates run (the uncounted first one too), so it is scaled to the
    counted documents; its background writers (checkpointer, WAL writer) are in it."""
    documents = phases.documents + batch  # run_updates runs one more update than it counts
    cpu = sum(phases.cpu.values()) / phases.documents + server / documents
    print(f"    the server's CPU per document: {server / documents * 1e6:,.0f} us (all the updates, first included)")
    print(f"    all in (this process + the server) per document: {cpu * 1e6:,.0f} us = {1 / cpu:,.0f} per CPU second")


async def reset_postgres(store: Any) -> None:
    async with store._pool.acquire() as conn:
        await conn.execute("TRUNCATE status_page, status_version, status_head")


def run(args: argparse.Namespace, sha256_ceiling: Callable[[], float]) -> None:
    sizes, batches = [int(s) for s in args.sizes.split(",")], [int(b) for b in args.batches.split(",") if b]
    cluster = None
    dsn = None
    if args.store == "postgresql":
        from loadtest.pgcluster import start_cluster

        cluster = start_cluster()
        dsn = cluster.create_database("status_index")
    try:
        print(f"storage: {args.store}; load average {os.getloadavg()[0]:.1f} (rates in wall seconds are shared)")
        server_cpu = cluster.cpu_seconds if cluster is not None else None
        asyncio.run(measure(args.store, sizes, batches, args.updates, dsn, sha256_ceiling, server_cpu))
    finally:
        if cluster is not None:
            cluster.stop()
