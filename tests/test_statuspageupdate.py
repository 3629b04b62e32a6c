"""The page-by-page update (tlogcore/statuspageupdate.py) against the node-level reference (PathPlan.apply_entries
with its rows merged into pages): the same root and byte-identical page rows on random batches."""

import asyncio
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from logserver.statusindexer import UpperLevels, read_plan
from logserver.statuspages import encoded
from logserver.statusstore import IndexVersion, PostgresStatusStore, SQLiteStatusStore
from tlogcore.statement import ISSUE, REVOKE
from tlogcore.statusindex import EMPTY, KEY_BITS
from tlogcore.statusindex_nodes import IndexStorageError, NodeId, PathPlan, read_paths
from tlogcore.statusindex_pages import (
    Page,
    changed_pages,
    encode_raw,
    half_of,
    merge_pages,
    nodes_in,
    page_id_bytes,
    pages_of,
    scan_page,
)
from tlogcore.statusindex_pages import (
    page_id_from_bytes as page_of_bytes,
)
from tlogcore.statuspageset import PageSet, decoded
from tlogcore.statuspageupdate import PageUpdate, raw_hash

Entries = list[tuple[int, str, bytes]]


class Rows:
    """Page rows as storage holds them (page id bytes -> row), the newest version only."""

    def __init__(self) -> None:
        self.rows: dict[bytes, bytes] = {}
        self.reads = 0

    def pages(self, ids: Iterable[NodeId]) -> dict[NodeId, Page]:
        self.reads += 1
        found = {page: self.rows.get(page_id_bytes(page)) for page in ids}
        return {page: {} if data is None else scan_page(page[0], data) for page, data in found.items()}

    def store(self, pages: dict[NodeId, Page]) -> None:
        self.rows.update((page_id_bytes(page), encode_raw(nodes)) for page, nodes in pages.items())


def reference(rows: Rows, entries: Entries) -> tuple[bytes, dict[bytes, bytes]]:
    """The node-level update, merged into whole pages as the stores did before the sixth round."""
    plan = PathPlan([document for _, _, document in entries])
    while wanted := plan.wanted():
        plan.supply(nodes_in(wanted, rows.pages(pages_of(wanted))))
    update = plan.apply_entries(entries)
    changes = changed_pages(update.writes)
    merged = merge_pages(rows.pages(changes), changes)
    return update.root, {page_id_bytes(page): encode_raw(nodes) for page, nodes in merged.items()}


def paged(
    rows: Rows, entries: Entries, held: dict[NodeId, Page] | None = None, ahead: int = 0, held_above: int = 0
) -> tuple[bytes, dict[bytes, bytes]]:
    update = PageUpdate(entries, dict(held or {}), held_above=held_above)
    for _ in range(70):  # at most one round per page of a 256-deep path
        wanted = update.wanted(ahead)
        if not wanted:
            break
        update.supply(rows.pages(wanted))
    root, written = update.apply()
    return root, {page_id_bytes(page): encode_raw(nodes) for page, nodes in written.items()}


def both(rows: Rows, entries: Entries) -> bytes:
    """Apply `entries` both ways to the same rows, the page update reading a page per path per round and also
    far ahead; they must agree byte for byte. The new rows are stored."""
    expected_root, expected_rows = reference(rows, entries)
    for ahead in (0, 24):
        root, written = paged(rows, entries, ahead=ahead)
        assert root == expected_root
        assert written == expected_rows
    rows.rows.update(written)
    return root


@pytest.mark.parametrize("seed", range(6))
def test_random_batches_give_the_reference_root_and_rows(seed: int) -> None:
    """Random, clustered, repeated and revoked documents over several batches; leaves at depth 256 too."""
    rng, rows, known, index = random.Random(seed), Rows(), list[bytes](), 0
    cluster = rng.randbytes(32)
    for _ in range(8):
        entries: Entries = []
        for _ in range(rng.choice([1, 2, 7, 60, 300])):
            shape = rng.random()
            if shape < 0.4 or not known:
                document = rng.randbytes(32)
            elif shape < 0.6:  # a long shared prefix: deep paths, several pages
                document = (cluster[: rng.randrange(2, 31)] + rng.randbytes(32))[:32]
            elif shape < 0.7:  # differs from a known key in its last bit only: two leaves at depth 256
                other = rng.choice(known)
                document = other[:31] + bytes([other[31] ^ 1])
            else:  # re-issued or revoked: the stored record grows
                document = rng.choice(known)
            kind = REVOKE if document in known and rng.random() < 0.5 else ISSUE
            entries.append((index, kind, document))
            known.append(document)
            index += 1
        both(rows, entries)


def test_an_empty_index_and_an_update_naming_no_document() -> None:
    rows = Rows()
    assert paged(rows, []) == (EMPTY, {})
    document = bytes(32)
    root = both(rows, [(0, ISSUE, document)])
    assert paged(rows, []) == (root, {})
    assert both(rows, [(1, ISSUE, document), (2, REVOKE, document)]) != root


def test_the_same_document_twice_in_one_batch_and_leaves_at_depth_256() -> None:
    rows = Rows()
    low, high = bytes(31) + b"\x00", bytes(31) + b"\x01"
    both(rows, [(0, ISSUE, low), (1, ISSUE, low), (2, ISSUE, high)])
    both(rows, [(3, REVOKE, high), (4, ISSUE, bytes(31) + b"\x02")])


def test_pages_already_held_are_not_read_again() -> None:
    rng, rows = random.Random(3), Rows()
    both(rows, [(i, ISSUE, rng.randbytes(32)) for i in range(2000)])
    top = rows.pages([(0, 0)])
    entries = [(2000 + i, ISSUE, rng.randbytes(32)) for i in range(50)]
    expected = reference(rows, entries)
    rows.reads = 0
    assert paged(rows, entries, held=top) == expected
    update = PageUpdate(entries, dict(top))
    assert (0, 0) not in update.wanted()


def held_top(rows: Rows, above: int) -> dict[NodeId, Page]:
    """Every stored page starting above depth `above`, as an indexer keeps its top (UpperLevels)."""
    return {page: scan_page(page[0], data) for page, data in ((page_of_bytes(b), d) for b, d in rows.rows.items())
            if page[0] < above}  # fmt: skip


@pytest.mark.parametrize("seed", range(4))
def test_with_the_top_held_the_walk_starts_below_it_and_finds_what_the_walk_from_the_root_finds(seed: int) -> None:
    """held_above: the frontier found key by key from the held page just above (paths ending above it, at a leaf,
    an EMPTY side or a page with no row) is the one the walk from the root finds, and the update is the
    reference's, byte for byte; for documents new and already indexed (a leaf moving down, a record growing)."""
    rng, rows = random.Random(40 + seed), Rows()
    known = [rng.randbytes(32) for _ in range(rng.choice((30, 700, 4000)))]
    both(rows, [(i, ISSUE, key) for i, key in enumerate(known)])
    again = rng.sample(known, 20)
    near = [key[:2] + rng.randbytes(30) for key in rng.sample(known, 20)]  # sharing a path with a stored leaf
    entries = [(9000 + i, REVOKE if i % 3 else ISSUE, key) for i, key in enumerate(again + near)]
    entries += [(9100 + i, ISSUE, rng.randbytes(32)) for i in range(rng.choice((1, 50, 600)))]
    expected = reference(rows, entries)
    for above in (4, 8, 12, 16):
        top = held_top(rows, above)
        walked, started = PageUpdate(entries, dict(top)), PageUpdate(entries, dict(top), held_above=above)
        assert started.wanted() == walked.wanted()
        assert paged(rows, entries, held=top, held_above=above) == expected
        started = PageUpdate(entries, dict(top), held_above=above)
        assert all(depth >= above for depth, _ in started.wanted())  # nothing above it is asked
    with pytest.raises(ValueError, match="no page starts at that depth"):
        PageUpdate(entries, {}, held_above=18)


def test_with_every_page_held_nothing_is_read_and_a_page_lacking_after_all_is_an_error() -> None:
    """held_all (the monitor's index, built in memory from empty): no read round, the reference's root and rows;
    a page the caller lacked after all is reported by apply, never taken as empty under a named child."""
    rng, rows = random.Random(4), Rows()
    both(rows, [(i, ISSUE, rng.randbytes(32)) for i in range(3000)])
    every = {page: scan_page(page[0], data) for page, data in ((page_of_bytes(b), d) for b, d in rows.rows.items())}
    entries = [(3000 + i, REVOKE if i % 7 == 0 else ISSUE, rng.randbytes(32)) for i in range(400)]
    expected = reference(rows, entries)
    update = PageUpdate(entries, dict(every), held_all=True)
    assert update.wanted() == []
    root, written = update.apply()
    assert (root, {page_id_bytes(page): encode_raw(nodes) for page, nodes in written.items()}) == expected
    assert PageUpdate([], {}, held_all=True).apply() == (EMPTY, {})  # an empty index: no page at all
    lacking = dict(every)
    del lacking[max(page for page in lacking if page[0] == 4)]
    with pytest.raises((ValueError, IndexStorageError)):
        PageUpdate([(5000, ISSUE, bytes([255]) * 32)], lacking, held_all=True).apply()


def test_pages_asked_ahead_take_fewer_rounds() -> None:
    """With nothing held, a page per round takes a round per 4 depths; asked ahead (as the indexer does for a
    small batch with no top kept), one or two."""
    rng, rows = random.Random(6), Rows()
    both(rows, [(i, ISSUE, rng.randbytes(32)) for i in range(3000)])  # paths about 13 deep: 4 pages
    entries = [(3000 + i, ISSUE, rng.randbytes(32)) for i in range(5)]
    rounds = []
    for ahead in (0, (3000).bit_length() + 4):
        update = PageUpdate(entries, {})
        count = 0
        while wanted := update.wanted(ahead):
            update.supply(rows.pages(wanted))
            count += 1
        rounds.append(count)
    assert rounds[0] >= 4 and rounds[1] <= 2, rounds


def test_a_missing_node_named_by_its_parent_is_reported_and_the_plan_must_be_read_first() -> None:
    rng, rows = random.Random(4), Rows()
    keys = [rng.randbytes(32) for _ in range(40)]
    both(rows, [(i, ISSUE, key) for i, key in enumerate(keys)])
    pages = rows.pages([(0, 0)])
    root_page = dict(pages[(0, 0)])
    del root_page[2]  # the root's left child, whose hash the root names
    update = PageUpdate([(99, ISSUE, bytes(31) + b"\x07")], {(0, 0): root_page})
    assert update.wanted() == []  # the walk stops where the page holds no node
    with pytest.raises(IndexStorageError, match="missing, but its parent names it"):
        update.apply()
    unread = PageUpdate([(99, ISSUE, keys[0])], {})
    with pytest.raises(ValueError, match="not finished reading"):
        unread.apply()
    assert raw_hash(None) == EMPTY


def test_statements_that_name_no_document_are_refused() -> None:
    with pytest.raises(ValueError, match="names no document"):
        PageUpdate([(0, "issuer-add", bytes(32))], {})
    with pytest.raises(ValueError, match="32 bytes"):
        PageUpdate([(0, ISSUE, bytes(31))], {})


def random_batches(seed: int, batches: int) -> list[Entries]:
    """Batches of new, clustered, re-issued and revoked documents, some at depth 256 beside a known key."""
    rng, known, index, made = random.Random(seed), list[bytes](), 0, list[Entries]()
    cluster = rng.randbytes(32)
    for _ in range(batches):
        entries: Entries = []
        for _ in range(rng.choice([1, 5, 40, 200])):
            shape = rng.random()
            if shape < 0.5 or not known:
                document = rng.randbytes(32)
            elif shape < 0.7:
                document = (cluster[: rng.randrange(2, 31)] + rng.randbytes(32))[:32]
            elif shape < 0.8:
                other = rng.choice(known)
                document = other[:31] + bytes([other[31] ^ 1])
            else:
                document = rng.choice(known)
            entries.append((index, REVOKE if document in known and rng.random() < 0.5 else ISSUE, document))
            known.append(document)
            index += 1
        made.append(entries)
    return made


async def open_store(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    if engine == "sqlite":
        return await SQLiteStatusStore.open(tmp_path / "index.db")
    return await PostgresStatusStore.open(request.getfixturevalue("pg_database").dsn, pool_size=2)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
@pytest.mark.parametrize("keep_from", [1, 10_000])
def test_through_storage_the_rows_are_the_references(
    engine: str, keep_from: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Each update at the stored head made both ways through the engine's own reads (the reference: PathPlan's
    node rounds and the store's merge of its writes; the page update: UpperLevels, kept top or read from the
    root): the same root and rows; then committed, and stored exactly as encoded."""

    async def scenario() -> None:
        store = await open_store(engine, tmp_path, request)
        try:
            upper, head, size = UpperLevels(store, keep_from), None, 0
            for entries in random_batches(keep_from, 6):
                version, size = size, size + len(entries)
                old = PageSet(version)
                plan = await read_plan(store, PathPlan([d for _, _, d in entries]), version, old)
                reference = plan.apply_entries(entries)
                expected = await store._pages.to_write(head and version, size, reference.writes, old)
                pages = PageSet(version)
                root, written = (await upper.update(entries, version, pages)).apply()
                pages.made(written)
                assert root == reference.root
                assert encoded(written, size) == expected
                new = IndexVersion(size, root, 1)
                await store.commit(head, new, {}, pages)
                upper.committed(version, size, pages)
                assert await stored_at(store, size) == [(page, data) for page, _, data in expected]
                head = new
            every = [entry for entries in random_batches(keep_from, 6) for entry in entries]
            assert head is not None and head.root == read_paths(PathPlan([]), {}).apply_entries(every).root
        finally:
            await store.close()

    asyncio.run(scenario())


async def stored_at(store: Any, version: int) -> list[tuple[bytes, bytes]]:
    sql = "SELECT page, data FROM status_page WHERE version = {} ORDER BY page"
    if isinstance(store, SQLiteStatusStore):
        return [(bytes(p), bytes(d)) for p, d in store._reader.execute(sql.format("?"), (version,)).fetchall()]
    async with store._pool.acquire() as conn:
        return [(bytes(p), bytes(d)) for p, d in await conn.fetch(sql.format("$1"), version)]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_kept_top_parses_its_deepest_pages_as_the_paths_reach_them(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """UpperLevels loads its top's rows (one half's, for a shard) and parses those of its deepest kept depth only
    when a batch's path reaches them: after an update exactly the pages on its paths are parsed, the rest kept as
    stored; the roots are the reference's, update after update, whole or by halves, and the parsed and unparsed
    pages together are the stored top (of that half)."""
    depth, bottom = 11, 8  # kept: the pages starting at depth 0, 4 and 8; those at 8 parsed lazily

    async def scenario() -> None:
        store = await open_store(engine, tmp_path, request)
        try:
            rng, head, every = random.Random(7), None, list[tuple[int, str, bytes]]()
            for _ in range(3):  # 1,500 documents: every page at depth 8 stored (256), and some below
                entries = [(len(every) + i, ISSUE, rng.randbytes(32)) for i in range(500)]
                head = await commit_whole(store, head, entries, UpperLevels(store, 1, depth))
                every += entries
            assert head is not None
            for half in (None, 0, 1):
                upper, version, reached = UpperLevels(store, 1, depth, half), head.size, set[NodeId]()
                for size in (3, 40):
                    batch = [(version + i, ISSUE, rng.randbytes(32)) for i in range(size)]
                    if half is not None:
                        batch = [entry for entry in batch if entry[2][0] >> 7 == half]
                    pages = PageSet(version)
                    update = await upper.update(batch, version, pages)
                    reached |= {(bottom, int.from_bytes(d, "big") >> (KEY_BITS - bottom)) for _, _, d in batch}
                    whole = decoded(await store.read_upper_rows(depth, version))
                    stored = {
                        page: nodes for page, nodes in whole.items() if half is None or half_of(page) in (None, half)
                    }
                    assert decoded(await store.read_upper_rows(depth, version, half)) == stored
                    assert {page for page in upper._pages if page[0] == bottom} == reached
                    assert decoded(list(upper._unparsed.items())) | upper._pages == stored
                    root, written = update.apply()
                    if half is None:  # a half's update alone is no version: its top stays where it was read
                        pages.made(written)
                        upper.committed(version, version + len(batch), pages)
                        new = IndexVersion(version + len(batch), root, 1)
                        await store.commit(head, new, {}, pages)
                        every, head, version = every + batch, new, new.size
                        assert root == read_paths(PathPlan([]), {}).apply_entries(every).root
                    else:
                        assert {half_of(page) for page in written} == {None, half}
                        assert len(reached) < len([page for page in stored if page[0] == bottom])
        finally:
            await store.close()

    asyncio.run(scenario())


async def commit_whole(store: Any, head: IndexVersion | None, entries: Entries, upper: UpperLevels) -> IndexVersion:
    """One update made by `upper` over `head`, committed."""
    version = head.size if head else 0
    pages = PageSet(version)
    root, written = (await upper.update(entries, version, pages)).apply()
    pages.made(written)
    new = IndexVersion(version + len(entries), root, 1)
    await store.commit(head, new, {}, pages)
    return new
