"""What PostgreSQL spends per index update under four layouts of the status index's page rows: the one in use (a row
per page per version, superseded rows deleted by page id) and three others (docs/status-proofs.md §11 "Twenty-first
round").

    .venv/bin/python -m loadtest.page_layout_bench [--documents 1000000] [--updates 30] [--batch 10000] \
        [--rounds 2] [--pg-settings shared_buffers=4GB[,shared_preload_libraries=pg_stat_statements]]

Why: at 10,000 entries/s the index's PostgreSQL statements are a third of the machine's CPU, and the two biggest
are the `COPY` of an update's page rows and the prune that deletes the rows they supersede, all over the table
(§11 "Nineteenth round"). Before building another layout, this measures the prize on the same rows.

The rows are real: an index of `documents` random documents is built in memory with tlogcore's PageUpdate (not
timed), then `updates` batches of `batch` documents each give the page rows an update writes (encoded as the
indexer encodes them). For each layout, in a new database of one throwaway cluster, the index's pages are loaded
at version 0 (not timed), then each update runs in one transaction as the indexer runs it, followed by the read an
update makes of its paths' pages (the pages of the next update, at the version before the one just written):

- `versioned` (in use, logserver/statusstore.py): `COPY` the rows at the new version; delete the rows that the
  update `GRACE` updates earlier superseded (`page = ANY(ids) AND version < v`); read with `DISTINCT ON (page)`.
- `in-place`: `status_cur(page PRIMARY KEY, version, data)` holds each page's newest row, rewritten in place
  (`INSERT ... ON CONFLICT DO UPDATE`: a heap-only update, no index entry, where the heap page has room:
  fillfactor 50); the row it replaces is first copied to `status_old(page, version, data, superseded)`, which
  readers of older versions look in, and which loses the rows superseded `GRACE` updates ago in one range delete
  (an index on `superseded`, in insertion order). A read takes the newest row if it is not newer than the version
  asked, else the old row whose life [version, superseded) holds it.
- `bucketed`: `versioned`, but every page at or below BUCKET_DEPTH is stored in its ancestor page's row there (the
  whole subtree in one row, uncompressed, inline up to about 8 KB): fewer, bigger rows.
- `versioned, unlogged`: `versioned` in an UNLOGGED table (no WAL: what the WAL costs).

Every layout answers the last read with the same pages (checked). Printed per layout and round: PostgreSQL's CPU
(every process, autovacuum included) per document and per row written, the client's wall time, and the rows and
bytes written per document; with pg_stat_statements loaded, each layout's four costliest statements. Each round
runs every layout, in turn. Asserts nothing but the reads' agreement.
"""

import argparse
import asyncio
import os
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg  # type: ignore[import-untyped]  # no stubs shipped

from loadtest.merge_bench import parse_settings
from loadtest.pgcluster import PgCluster, start_cluster
from tlogcore.gcpause import paused_gc
from tlogcore.statement import ISSUE
from tlogcore.statusindex_nodes import NodeId
from tlogcore.statusindex_pages import Page, encode_raw, page_id_bytes
from tlogcore.statuspageupdate import PageUpdate

BUCKET_DEPTH = 16  # the bucketed layout: a page at or below this depth is stored in its ancestor page's row there
GRACE = 3  # updates between a row's supersession and its removal (the indexer prunes once no lookup reads it)
Row = tuple[bytes, bytes]  # (page id, page row)


@dataclass(frozen=True)
class Workload:
    preload: list[Row]  # every page of the index before the updates
    updates: list[list[Row]]  # each update's rows, in page id order (as the indexer sends them)
    bucket_preload: list[Row]  # the same, bucketed (`bucket_of`)
    bucket_updates: list[list[Row]]


def bucket_of(page: NodeId) -> NodeId:
    """A page's bucket: itself above BUCKET_DEPTH, else its ancestor page there (which holds its whole subtree)."""
    depth, prefix = page
    return page if depth < BUCKET_DEPTH else (BUCKET_DEPTH, prefix >> (depth - BUCKET_DEPTH))


def bucket_rows(pages: dict[NodeId, Page], buckets: Iterable[NodeId]) -> list[Row]:
    """Each bucket's row: its pages' ids and rows, each length-prefixed (a page above BUCKET_DEPTH alone)."""
    members: dict[NodeId, list[NodeId]] = {bucket: [] for bucket in buckets}
    for page in pages:
        bucket = bucket_of(page)
        if bucket in members:
            members[bucket].append(page)
    rows = []
    for bucket, inside in members.items():
        parts = []
        for page in sorted(inside):
            page_id, data = page_id_bytes(page), encode_raw(pages[page])
            parts += [len(page_id).to_bytes(1, "big"), page_id, len(data).to_bytes(2, "big"), data]
        rows.append((page_id_bytes(bucket), b"".join(parts)))
    return sorted(rows)


def build_workload(documents: int, updates: int, batch: int, seed: int = 1) -> Workload:
    randbytes = random.Random(seed).randbytes
    with paused_gc():
        pages: dict[NodeId, Page] = {}
        for start in range(0, documents, 200_000):
            count = min(200_000, documents - start)
            update = PageUpdate([(start + i, ISSUE, randbytes(32)) for i in range(count)], pages, held_all=True)
            pages.update(update.apply()[1])
        preload = sorted((page_id_bytes(page), encode_raw(nodes)) for page, nodes in pages.items())
        bucket_preload = bucket_rows(pages, {bucket_of(page) for page in pages})
        written: list[list[Row]] = []
        bucketed: list[list[Row]] = []
        for number in range(updates):
            first = documents + number * batch
            update = PageUpdate([(first + i, ISSUE, randbytes(32)) for i in range(batch)], pages, held_all=True)
            changed = update.apply()[1]
            pages.update(changed)
            written.append(sorted((page_id_bytes(page), encode_raw(nodes)) for page, nodes in changed.items()))
            bucketed.append(bucket_rows(pages, {bucket_of(page) for page in changed}))
    return Workload(preload, written, bucket_preload, bucketed)


class Layout:
    name = ""
    READ = ""  # the read of a set of pages as of a version

    def rows(self, work: Workload) -> tuple[list[Row], list[list[Row]]]:
        """The rows this layout stores: before the updates, and each update's."""
        return work.preload, work.updates

    async def create(self, db: asyncpg.Connection, preload: Sequence[Row]) -> None:
        raise NotImplementedError

    async def update(self, db: asyncpg.Connection, version: int, rows: Sequence[Row], due: int | None) -> None:
        """One update's rows at `version`, in one transaction; `due`: the version whose superseded rows go now."""
        raise NotImplementedError

    async def read(self, db: asyncpg.Connection, ids: list[bytes], version: int) -> dict[bytes, bytes]:
        """The rows of these ids as of `version` (READ: page ids $1, version $2)."""
        return {bytes(page): bytes(data) for page, data in await db.fetch(self.READ, ids, version)}


class Versioned(Layout):
    name = "versioned (in use)"
    READ = (
        "SELECT DISTINCT ON (page) page, data FROM status_page WHERE page = ANY($1::bytea[]) AND version <= $2 "
        "ORDER BY page, version DESC"
    )

    TABLE = (
        "CREATE TABLE status_page (page bytea NOT NULL, version bigint NOT NULL, data bytea NOT NULL, "
        "PRIMARY KEY (page, version))"
    )
    SETUP: tuple[str, ...] = ()  # run after TABLE

    def __init__(self) -> None:
        self._written: dict[int, list[bytes]] = {}

    async def create(self, db: asyncpg.Connection, preload: Sequence[Row]) -> None:
        for sql in (self.TABLE, *self.SETUP):
            await db.execute(sql)
        await db.copy_records_to_table("status_page", records=[(p, 0, d) for p, d in preload])

    async def update(self, db: asyncpg.Connection, version: int, rows: Sequence[Row], due: int | None) -> None:
        self._written[version] = [page for page, _ in rows]
        async with db.transaction():
            await db.copy_records_to_table("status_page", records=[(p, version, d) for p, d in rows])
            if due is not None:
                await db.execute(
                    "DELETE FROM status_page WHERE page = ANY($1::bytea[]) AND version < $2",
                    self._written.pop(due),
                    due,
                )


class InPlace(Layout):
    name = "in-place"
    READ = (
        "SELECT page, data FROM status_cur WHERE page = ANY($1::bytea[]) AND version <= $2 UNION ALL "
        "SELECT page, data FROM status_old WHERE page = ANY($1::bytea[]) AND version <= $2 AND superseded > $2"
    )

    async def create(self, db: asyncpg.Connection, preload: Sequence[Row]) -> None:
        await db.execute(
            "CREATE TABLE status_cur (page bytea PRIMARY KEY, version bigint NOT NULL, data bytea NOT NULL) "
            "WITH (fillfactor = 50)"
        )
        await db.execute(
            "CREATE TABLE status_old (page bytea NOT NULL, version bigint NOT NULL, data bytea NOT NULL, "
            "superseded bigint NOT NULL, PRIMARY KEY (page, version))"
        )
        await db.execute("CREATE INDEX status_old_superseded ON status_old (superseded)")
        await db.copy_records_to_table("status_cur", records=[(p, 0, d) for p, d in preload])

    async def update(self, db: asyncpg.Connection, version: int, rows: Sequence[Row], due: int | None) -> None:
        ids = [page for page, _ in rows]
        async with db.transaction():
            await db.execute(
                "INSERT INTO status_old (page, version, data, superseded) "
                "SELECT page, version, data, $2 FROM status_cur WHERE page = ANY($1::bytea[])",
                ids,
                version,
            )
            await db.execute(
                "INSERT INTO status_cur (page, version, data) SELECT page, $2, data "
                "FROM unnest($1::bytea[], $3::bytea[]) AS new (page, data) "
                "ON CONFLICT (page) DO UPDATE SET version = EXCLUDED.version, data = EXCLUDED.data",
                ids,
                version,
                [data for _, data in rows],
            )
            if due is not None:
                await db.execute("DELETE FROM status_old WHERE superseded <= $1", due)


class Bucketed(Versioned):
    """`versioned`, but a page at or below BUCKET_DEPTH is stored in its ancestor's row there (`bucket_rows`): an
    update rewrites every page of a bucket it changes, in fewer, bigger rows. Stored inline, uncompressed (page rows
    are hashes: they do not compress), in rows of up to about 8 KB."""

    name = f"bucketed at depth {BUCKET_DEPTH}"

    def rows(self, work: Workload) -> tuple[list[Row], list[list[Row]]]:
        return work.bucket_preload, work.bucket_updates

    TABLE = Versioned.TABLE + " WITH (toast_tuple_target = 8160)"
    SETUP = ("ALTER TABLE status_page ALTER COLUMN data SET STORAGE EXTERNAL",)

    async def read(self, db: asyncpg.Connection, ids: list[bytes], version: int) -> dict[bytes, bytes]:
        """The pages of these buckets (each bucket's row split into its pages)."""
        pages = {}
        for data in (await super().read(db, ids, version)).values():
            at = 0
            while at < len(data):
                id_length = data[at]
                page_id = data[at + 1 : at + 1 + id_length]
                at += 1 + id_length
                length = int.from_bytes(data[at : at + 2], "big")
                pages[page_id] = data[at + 2 : at + 2 + length]
                at += 2 + length
        return pages


class Unlogged(Versioned):
    """`versioned` in an UNLOGGED table: no WAL for the index's rows, at the price of an empty table after a crash
    (the index rebuilt from the log) and none on a standby. Measured to price the WAL, not proposed as is."""

    name = "versioned, unlogged"

    TABLE = Versioned.TABLE.replace("CREATE TABLE", "CREATE UNLOGGED TABLE")


@dataclass(frozen=True)
class Figures:
    pg_cpu: float
    wall: float
    documents: int
    rows: int
    row_bytes: int
    reads: dict[bytes, bytes]

    def line(self, layout: str, number: int) -> str:
        return (
            f"| {layout} | {number} | {self.pg_cpu / self.documents * 1e6:.1f} | {self.pg_cpu / self.rows * 1e6:.1f} "
            f"| {self.wall / self.documents * 1e6:.1f} | {self.rows / self.documents:.2f} | "
            f"{self.row_bytes / self.documents:,.0f} |"
        )


async def run_layout(cluster: PgCluster, layout: Layout, work: Workload, batch: int, database: str) -> Figures:
    db = await asyncpg.connect(cluster.create_database(database))
    try:
        preload, updates = layout.rows(work)
        await layout.create(db, preload)
        await db.execute("CHECKPOINT")
        await db.execute("VACUUM ANALYZE")
        if cluster.counts_statements():
            cluster.reset_statements(database)
        cpu, started, reads = cluster.cpu_seconds(), time.perf_counter(), {}
        versions = []
        for number, rows in enumerate(updates):
            version = (number + 1) * batch
            versions.append(version)
            due = versions[-1 - GRACE] if len(versions) > GRACE else None
            await layout.update(db, version, rows, due)
            following = updates[number + 1] if number + 1 < len(updates) else rows
            reads = await layout.read(db, [page for page, _ in following], version - batch)
        wall = time.perf_counter() - started
        await asyncio.sleep(1.0)  # autovacuum workers that started meanwhile are counted once they exit
        return Figures(cluster.cpu_seconds() - cpu, wall, batch * len(updates),
                       sum(len(rows) for rows in updates), sum(len(d) for rows in updates for _, d in rows),
                       reads)  # fmt: skip
    finally:
        await db.close()


def add_workload_arguments(parser: argparse.ArgumentParser, updates: int, rounds: int) -> None:
    """The workload's options, shared with sqlite_layout_bench."""
    parser.add_argument("--documents", type=float, default=1e6, help="documents indexed before the updates")
    parser.add_argument("--updates", type=int, default=updates, help="updates timed per layout")
    parser.add_argument("--batch", type=int, default=10_000, help="documents per update")
    parser.add_argument("--rounds", type=int, default=rounds, help="rounds, each running every layout")


def built_workload(args: argparse.Namespace) -> tuple[Workload, str]:
    """The workload of these options, and a line saying what it is and how long it took to build."""
    started = time.perf_counter()
    work = build_workload(int(args.documents), args.updates, args.batch)
    rows = sum(len(r) for r in work.updates)
    return work, (
        f"{len(work.preload):,} pages for {int(args.documents):,} documents, then {args.updates} updates of "
        f"{args.batch:,} documents ({rows / (args.updates * args.batch):.2f} page rows per document) built in "
        f"{time.perf_counter() - started:.0f} s; cores {os.cpu_count()}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_workload_arguments(parser, updates=30, rounds=2)
    parser.add_argument("--pg-settings", type=parse_settings, default={}, help="e.g. shared_buffers=4GB")
    args = parser.parse_args(argv)
    work, built = built_workload(args)
    print(f"page layouts: {built}; settings {args.pg_settings or 'default'}")
    biggest = max(len(data) for rows in work.bucket_updates for _, data in rows)
    print(f"  the biggest bucket row written: {biggest:,} B")
    print(
        "\n| layout | round | PostgreSQL CPU µs per document | per row written | client wall µs per document "
        "| rows written per document | bytes written per document |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    cluster = start_cluster(settings=args.pg_settings)
    try:
        for number in range(args.rounds):
            answers = []
            for index, layout in enumerate((Versioned(), InPlace(), Bucketed(), Unlogged())):
                figures = asyncio.run(run_layout(cluster, layout, work, args.batch, f"r{number}l{index}"))
                answers.append(figures.reads)
                print(figures.line(layout.name, number), flush=True)
                if cluster.counts_statements():
                    for cost in cluster.top_statements(f"r{number}l{index}", 4):
                        print(f"|   {cost.line()} | | | | | | |", flush=True)
            if answers[0] != answers[1]:
                raise SystemExit("the layouts read different rows: the in-place layout is wrong")
            if any(answers[2].get(page) != data for page, data in answers[0].items()):
                raise SystemExit("the bucketed layout read different pages: it is wrong")
            if answers[3] != answers[0]:
                raise SystemExit("the unlogged table read different rows")
    finally:
        cluster.stop()
    print(f"\nload average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
