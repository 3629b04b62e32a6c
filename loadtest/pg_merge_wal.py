"""The WAL a PostgreSQL lookup merge writes, by the size of the lookup table it merges into (issue 20).

    .venv/bin/python -m loadtest.pg_merge_wal                  (10^5, 10^6, 3*10^6 rows: a few minutes)
    .venv/bin/python -m loadtest.pg_merge_wal --sizes 1e5,1e7  (10^7: about 10 minutes and 1 GB)

A merge (logserver/postgres.py MERGE) inserts the new leaves' random 64-bit keys into the B-tree of `leaf_lookup`
and of `document_lookup`. The first change to a page after a checkpoint writes the whole page to the WAL (a
full-page image), and PostgreSQL has one WAL: every commit's flush waits behind what the merges wrote before it.
Once the table has more pages than a merge has keys, each key touches a page of its own, and the WAL a merge
writes per key grows toward a page (8 KiB) per table, where a commit writes under 1 KiB per entry. This prints,
for each size, the WAL and the time of one merge of 10,000 keys into one such table right after a checkpoint, on
a throwaway cluster (loadtest/pgcluster.py). Prints figures; asserts nothing. `loadtest.merge_bench` measures
both engines, both tables, and the merge sizes the sequencer now waits for.
"""

import argparse
import asyncio
import os
import time
from collections.abc import Sequence

import asyncpg  # type: ignore[import-untyped]  # no stubs shipped

from loadtest.merge_bench import parse_settings
from loadtest.pgcluster import start_cluster

MERGE_KEYS = 10_000  # merge_min: the fixed merge size before the share rule (SequencerConfig.merge_batch)
FILL = (
    "INSERT INTO lk SELECT (random() * 9e18)::bigint, g FROM generate_series($1::bigint, $2::bigint - 1) g ORDER BY 1"
)


async def measure(dsn: str, sizes: Sequence[int]) -> None:
    db = await asyncpg.connect(dsn)
    try:
        await db.execute("CREATE TABLE lk (key bigint NOT NULL, idx bigint NOT NULL, PRIMARY KEY (key, idx))")
        size = 0
        for target in sizes:
            await db.execute(FILL, size, target)
            await db.execute("CHECKPOINT")
            before = await db.fetchval("SELECT pg_current_wal_lsn()")
            started = time.perf_counter()
            await db.execute(FILL, target, target + MERGE_KEYS)
            spent = time.perf_counter() - started
            wal = float(await db.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)", before))
            size = target + MERGE_KEYS
            print(
                f"  table of {target:>10,} rows: a merge of {MERGE_KEYS:,} keys wrote {wal / 1e6:6.1f} MB of WAL "
                f"({wal / MERGE_KEYS:,.0f} B per key, one table of two) in {spent * 1000:,.0f} ms; "
                f"load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    finally:
        await db.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="1e5,1e6,3e6", help="lookup table sizes, ascending (default 1e5,1e6,3e6)")
    parser.add_argument(
        "--pg-settings",
        default="",
        help="extra PostgreSQL server settings, e.g. shared_buffers=4GB",
    )
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    print("WAL written by one PostgreSQL lookup merge right after a checkpoint, by table size")
    settings = parse_settings(args.pg_settings)
    print(f"  server settings beyond the cluster's: {settings}")
    cluster = start_cluster(settings=settings)
    try:
        asyncio.run(measure(cluster.dsn(), sizes))
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
