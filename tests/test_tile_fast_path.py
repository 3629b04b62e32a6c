"""GET /tile/... is answered before Starlette's middleware and router (logserver/tileroute.py, issue 20: a monitor's
catch-up makes two tile GETs per 256 entries): the same status, bytes and headers as through the router, the same
JSON errors, and every body byte for byte what the entries and stored hashes say (c2sp.org/tlog-tiles)."""

import asyncio
import random
from pathlib import Path

from tests.api_helpers import ISSUER, REGISTRY_KEY, app_client, statement
from tests.test_proof_fast_path import Both, answer, teapot
from tlogcore import merkle
from tlogcore.errors import MalformedError
from tlogcore.statement import ISSUE, ISSUER_ADD
from tlogcore.tiles import ENTRIES_LEVEL, Tile, decode_entry_bundle, encode_entry_bundle, tile_bytes, tiles_for_size

SIZE = 2 + 300  # the registry entry, then full and partial level-0 tiles


def paths(size: int) -> list[str]:
    """Every tile and bundle of the tree, partial ones of smaller sizes, and paths no tree of `size` serves."""
    served = [t.path for t in tiles_for_size(size)]
    served += [Tile(ENTRIES_LEVEL, n, w).path for n, w in ((0, 256), (1, size - 256), (1, 3), (0, 1))]
    return served + [
        "/tile/0/000.p/1",  # a partial tile of an earlier size: still served
        "tile/0/001",  # full tile 1 does not exist yet
        "tile/entries/001",
        f"tile/0/001.p/{size - 255}",  # one wider than the tree
        "tile/1/000",
        "tile/0/0001",  # not canonical
        "tile/0/x000/001",
        "tile/64/000",
        "tile/entries/000.p/0",
        "tile/nothing",
        "tile/",
    ]


async def grow(client, count: int) -> None:  # type: ignore[no-untyped-def]
    await client.submit([statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry")])
    for first in range(0, count, 100):
        await client.submit(
            [statement(ISSUE, ISSUER, document=i.to_bytes(32, "big")) for i in range(first, min(count, first + 100))]
        )


def test_tiles_answer_exactly_as_through_the_router(tmp_path: Path) -> None:
    both = Both()

    async def scenario() -> None:
        async with app_client(tmp_path, wrap=both.wrap) as (client, raw):
            await grow(client, SIZE - 1)
            statuses = set()
            for path in paths(SIZE):
                url = "/" + path.lstrip("/")
                both.router_only = False
                short = await raw.get(url)
                both.router_only = True
                routed = await raw.get(url)
                assert answer(short) == answer(routed), url
                assert short.headers["access-control-allow-origin"] == "*", url
                statuses.add(short.status_code)
                if short.status_code == 404:
                    assert short.json()["error"] == "not_found" and short.json()["message"], url
                else:
                    assert ("immutable" in short.headers["cache-control"]) == (".p/" not in url), url
            assert statuses == {200, 404}

    asyncio.run(scenario())


def test_tile_bodies_are_the_entries_and_their_hashes(tmp_path: Path) -> None:
    """Independently of the server's code: each bundle is its entries, each level-0 tile their leaf hashes, and the
    level-1 partial tile the folds of the full level-0 tiles, through the fast path and after a cache hit."""

    async def scenario() -> None:
        async with app_client(tmp_path) as (client, raw):
            await grow(client, 2 * 256 + 9)
            size = 2 * 256 + 10
            for _ in range(2):  # the second time from the cache
                bundles = [(await raw.get(f"/tile/entries/00{n}")).content for n in range(2)]
                bundles.append((await raw.get("/tile/entries/002.p/10")).content)
                entries = [e for body in bundles for e in decode_entry_bundle(body)]
                assert len(entries) == size and encode_entry_bundle(entries[:256]) == bundles[0]
                level0 = [(await raw.get(p)).content for p in ("/tile/0/000", "/tile/0/001", "/tile/0/002.p/10")]
                assert b"".join(level0) == merkle.leaf_hashes(entries)
                level1 = (await raw.get("/tile/1/000.p/2")).content
                assert level1 == merkle.perfect_root(level0[0]) + merkle.perfect_root(level0[1])

    asyncio.run(scenario())


def test_only_tile_gets_skip_the_middleware_stack(tmp_path: Path) -> None:
    """With Starlette's stack replaced by one that answers 418, tile GETs are still answered (and their 404s); a
    HEAD of a tile and every other path reach the stack."""
    both = Both()

    async def scenario() -> None:
        async with app_client(tmp_path, wrap=both.wrap) as (client, raw):
            await grow(client, 3)
            both.app.middleware_stack = teapot
            assert (await raw.get("/tile/0/000.p/4")).status_code == 200
            assert (await raw.get("/tile/entries/000.p/4")).status_code == 200
            assert (await raw.get("/tile/0/000")).status_code == 404
            assert (await raw.head("/tile/0/000.p/4")).status_code == 418
            assert (await raw.get("/tilex/0/000")).status_code == 418
            assert (await raw.get("/checkpoint")).status_code == 418

    asyncio.run(scenario())


def test_a_tile_beyond_the_tree_is_served_once_the_tree_grows(tmp_path: Path) -> None:
    """The route remembers the largest size it read (the log only grows); a tile beyond it reads the head again."""

    async def scenario() -> None:
        async with app_client(tmp_path) as (client, raw):
            await grow(client, 3)
            assert (await raw.get("/tile/0/000.p/4")).status_code == 200
            assert (await raw.get("/tile/0/000.p/6")).status_code == 404
            await client.submit([statement(ISSUE, ISSUER, document=b"\x07" * 32)])
            await client.submit([statement(ISSUE, ISSUER, document=b"\x08" * 32)])
            assert (await raw.get("/tile/0/000.p/6")).status_code == 200
            assert (await raw.get("/tile/0/000.p/4")).status_code == 200  # an earlier size's partial tile

    asyncio.run(scenario())


def test_stored_indexes_are_where_storage_keeps_each_node() -> None:
    """Tile.stored_indexes (a formula per tile) against merkle.stored_hash_index (one call per node)."""
    rng = random.Random(5)
    for level in range(0, 8):
        for index in [0, 1, 2, 3, 255, 256, 257, 1000, 65535, 65536] + [rng.randrange(1 << 40) for _ in range(5)]:
            for width in (1, 2, 7, 128, 255, 256):
                tile = Tile(level, index, width)
                assert tile.stored_indexes == [merkle.stored_hash_index(lv, n) for lv, n in tile.nodes], tile


def test_entry_bundles_encode_as_before_and_refuse_what_they_did() -> None:
    """The bundle encoder (lengths looked up, parts joined once) against the plain loop, at the lookup's edges."""

    def plain(entries: list[bytes]) -> bytes:
        return b"".join(len(e).to_bytes(2, "big") + e for e in entries)

    rng = random.Random(7)
    cases = [[], [b""], [b"x" * 2047], [b"x" * 2048], [b"y" * 0xFFFF, b""], [bytes(300)] * 256]
    cases += [[rng.randbytes(rng.randrange(0, 4000)) for _ in range(rng.randrange(1, 40))] for _ in range(50)]
    for entries in cases:
        assert encode_entry_bundle(entries) == plain(entries)
        assert encode_entry_bundle(iter(entries)) == plain(entries)
        assert decode_entry_bundle(plain(entries)) == entries
    for too_long in ([b"z" * 0x10000], [b"", b"z" * 0x10000, b""]):
        try:
            encode_entry_bundle(too_long)
        except MalformedError as exc:
            assert "65536 bytes exceeds 65535" in str(exc)
        else:
            raise AssertionError("an entry over 65535 bytes was encoded")


def test_hash_tiles_refuse_hashes_of_the_wrong_length() -> None:
    tile = Tile(0, 0, 3)
    good = [bytes([i]) * 32 for i in range(3)]
    assert tile_bytes(tile, good) == b"".join(good)
    for bad in (good[:2], [*good, good[0]], [b"a" * 31, b"b" * 33, good[2]], [b"a" * 31, *good[1:]]):
        try:
            tile_bytes(tile, bad)
        except MalformedError as exc:
            assert "needs 3 hashes of 32 bytes" in str(exc)
        else:
            raise AssertionError(f"hashes of lengths {[len(h) for h in bad]} made a tile")


def test_entry_bundles_decode_as_the_plain_loop_did() -> None:
    """The decoder (bounded by its loop) against the plain one: the same entries for every bundle the plain loop
    read, and a MalformedError for every one it refused (truncated, or more than 256 entries)."""

    def plain(data: bytes) -> list[bytes]:
        entries, pos = [], 0
        while pos < len(data):
            if pos + 2 > len(data):
                raise MalformedError("truncated length")
            end = pos + 2 + int.from_bytes(data[pos : pos + 2], "big")
            if end > len(data):
                raise MalformedError("truncated entry")
            entries.append(data[pos + 2 : end])
            pos = end
        if len(entries) > 256:
            raise MalformedError("too many")
        return entries

    rng = random.Random(11)
    bodies = [b"", b"\x00", b"\x00\x00", b"\x00\x05abc", b"\x00\x00" * 256, b"\x00\x00" * 257, b"\x00\x01a" * 257]
    for _ in range(300):
        body = encode_entry_bundle([rng.randbytes(rng.randrange(0, 60)) for _ in range(rng.randrange(0, 258))])
        cut = rng.choice([len(body), rng.randrange(0, len(body) + 1)])
        bodies.append(body[:cut])
    for body in bodies:
        try:
            want: list[bytes] | None = plain(body)
        except MalformedError:
            want = None
        try:
            got: list[bytes] | None = decode_entry_bundle(body)
        except MalformedError:
            got = None
        assert got == want, body[:40]
