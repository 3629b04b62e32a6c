"""Static tiles (logserver/static_tiles.py): the pure growth plan, the directory writer on a real SQLite log, and
end to end: a real `tlog-server serve` with a witness keeps a directory that a plain static file server
(`python -m http.server`, not the log) serves, verified by the real `tlog-monitor audit-once` and byte for byte
against the log's own HTTP answers; the directory heals after a restart; bad configuration is one clear line."""

import asyncio
import hashlib
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from log_harness import REPO, LogProcess, free_port, issue, post_statements, register_issuer, seed
from monitor_helpers import MONITOR, wait_for
from witness_helpers import WitnessProcess, write_config

from loadtest.localproc import log_identity
from logserver.proofs import TileReader
from logserver.sqlite import SQLiteStorage
from logserver.static_tiles import CHECKPOINT, StaticTiles, StaticTilesError, authenticate_directory, plan_growth
from logserver.storage import EntryRecord, Head
from tlogcore import merkle
from tlogcore.checkpoint import Checkpoint, parse_checkpoint
from tlogcore.errors import TlogError
from tlogcore.keys import Ed25519Signer
from tlogcore.note import parse_note, sign_note
from tlogcore.policy import parse_policy
from tlogcore.tiles import (
    ENTRIES_LEVEL,
    TILE_WIDTH,
    Tile,
    decode_entry_bundle,
    parse_tile_path,
    split_tile,
    tile_at,
    tiles_for_size,
)

ISSUER = Ed25519Signer("registry-office.example.gov.kh", seed(77))
SERVER = [sys.executable, "-c", "from logserver.cli import main; main()"]
DOCUMENTS = itertools.count()  # every statement a test submits is about a new document


def files_of_size(size: int) -> set[str]:
    """Every tile and entry bundle path a tree of `size` has (tlogcore's own enumeration)."""
    bundles = {tile_at(ENTRIES_LEVEL, n, size).path for n in range(-(-size // TILE_WIDTH))}
    return {t.path for t in tiles_for_size(size)} | bundles


# --- the pure plan ----------------------------------------------------------------------------------------


def test_plan_from_empty_is_every_tile_of_the_size() -> None:
    for size in (1, 255, 256, 257, 70000, 65536, 65536 * 256 + 3):
        assert set(plan_growth(0, size).paths) == files_of_size(size)
    # FORMATS.md's example, size 70000: 273 full L0 + L0 .p/112, 1 full L1 + L1 .p/17, L2 .p/1.
    plan = plan_growth(0, 70000)
    assert [p for p in plan.paths if p.startswith("tile/1/") or p.startswith("tile/2/")] == [
        "tile/1/000",
        "tile/1/001.p/17",
        "tile/2/000.p/1",
    ]
    assert len([p for p in plan.paths if p.startswith("tile/0/") and ".p/" not in p]) == 273
    assert "tile/0/273.p/112" in plan.paths and "tile/entries/273.p/112" in plan.paths


def test_plan_of_growth_writes_new_full_tiles_and_the_new_partials_only() -> None:
    plan = plan_growth(100, 300)
    assert plan.paths == [
        "tile/entries/000",
        "tile/entries/001.p/44",
        "tile/0/000",
        "tile/0/001.p/44",
        "tile/1/000.p/1",
    ]
    assert [t.path for t in plan.completed] == ["tile/entries/000", "tile/0/000"]  # were partial at 100
    # From exactly one full tile: tile 0 stays; level 1 keeps width 1, so it is not rewritten.
    plan = plan_growth(256, 300)
    assert plan.paths == ["tile/entries/001.p/44", "tile/0/001.p/44"]
    assert plan.completed == ()
    assert plan_growth(300, 300).write == ()
    with pytest.raises(ValueError):
        plan_growth(301, 300)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=70_000), min_size=1, max_size=6))
def test_plans_applied_in_turn_leave_exactly_the_files_of_the_size(sizes: list[int]) -> None:
    """A directory grown by successive plans, pruning completed partials, holds every file of the final size,
    full tiles are planned once only, and what is left beyond that are older partials of still-partial tiles."""
    directory: set[str] = set()
    written_full: set[str] = set()
    old = 0
    for size in sorted(sizes):
        plan = plan_growth(old, size)
        for tile in plan.write:
            if not tile.is_partial:
                assert tile.path not in written_full, f"{tile.path} planned twice"
                written_full.add(tile.path)
            directory.add(tile.path)
        for tile in plan.completed:
            directory -= {p for p in directory if p.startswith(tile.path + ".p/")}
        old = size
    assert files_of_size(old) <= directory
    for extra in directory - files_of_size(old):
        tile = parse_tile_path(extra)
        current = tile_at(tile.level, tile.index, old)
        assert tile.is_partial and current.is_partial and tile.width < current.width


# --- the writer, on a real SQLite log built in-process ----------------------------------------------------


class BuiltLog:
    """A SQLite log grown with `commit_batch` directly (leaf i is `entry i`), every checkpoint published."""

    def __init__(self, storage: SQLiteStorage) -> None:
        self.storage, self.key = storage, Ed25519Signer("static.example/log", seed(5))
        self.head: Head | None = None
        self.edge: list[bytes] = []
        self.leaves: list[bytes] = []

    async def grow(self, size: int) -> None:
        old = self.head.size if self.head else 0
        entries = [b"entry %d" % i for i in range(old, size)]
        hashes = [merkle.leaf_hash(e) for e in entries]
        appended = merkle.append_leaves(old, self.edge, hashes)
        root = appended.root if size else merkle.EMPTY_ROOT
        head = Head(size, root, sign_note(Checkpoint(self.key.name, size, root).text, [self.key]))
        records = [EntryRecord(e, h, None, False) for e, h in zip(entries, hashes, strict=True)]
        await self.storage.commit_batch(
            self.head, head, records, merkle.stored_hash_count(old), appended.new_hashes, publish=True
        )
        self.head, self.edge, self.leaves = head, appended.edge, self.leaves + hashes


@contextmanager
def built_log(tmp: Path) -> Iterator[tuple[asyncio.Runner, BuiltLog]]:
    with asyncio.Runner() as runner:
        storage = runner.run(SQLiteStorage.open(tmp / "log.db"))
        try:
            yield runner, BuiltLog(storage)
        finally:
            runner.run(storage.close())


def test_tile_cache_is_bounded_in_bytes_and_answers_like_storage(tmp_path: Path) -> None:
    """The server's cache of full tiles (logserver/proofs.py): least recently used out, never over its bytes."""
    with built_log(tmp_path) as (runner, log):
        runner.run(log.grow(TILE_WIDTH * 5 + 7))
        assert log.head is not None
        size = log.head.size
        a, b, c = (tile_at(0, i, size) for i in range(3))
        reader = TileReader(log.storage, cache_bytes=2 * 8192)  # two full level-0 hash tiles
        for tile in (a, b, a, c):
            runner.run(reader.read(tile))
        assert reader.cached_paths == [a.path, c.path]  # b was the least recently used
        assert reader.cached_bytes == 2 * 8192

        every = tiles_for_size(size) + [tile_at(ENTRIES_LEVEL, i, size) for i in range(6)]
        uncached = TileReader(log.storage, cache_bytes=0)
        for tile in every + every:  # the second pass answers partly from the cache
            assert runner.run(reader.read(tile)) == runner.run(uncached.read(tile)), tile.path
            assert reader.cached_bytes <= 2 * 8192
        assert uncached.cached_bytes == 0 and uncached.cached_paths == []
        assert tile_at(0, 5, size).path not in reader.cached_paths  # partial tiles are never kept

        bundle = tile_at(ENTRIES_LEVEL, 0, size)
        small = TileReader(log.storage, cache_bytes=len(runner.run(uncached.read(bundle))) - 1)
        runner.run(small.read(bundle))
        assert small.cached_paths == []  # a body larger than the whole cache is not kept


def tree_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def check_directory(root: Path, log: BuiltLog) -> None:
    """The directory against the log recomputed here: checkpoint, every tile, every bundle, nothing stale."""
    assert log.head is not None
    size = log.head.size
    files = tree_files(root)
    assert files[CHECKPOINT] == log.head.checkpoint
    assert not [p for p in files if "/.tmp-" in p or p.startswith(".tmp-")], "a temporary file was left"
    for path in files_of_size(size):
        tile = parse_tile_path(path)
        first = tile.index * TILE_WIDTH
        if tile.is_entries:
            want = [b"entry %d" % i for i in range(first, first + tile.width)]
            assert decode_entry_bundle(files[path]) == want, path
        else:
            hashes = split_tile(tile, files[path])
            level = tile.level * 8
            for offset, node in enumerate(hashes):
                lo, hi = (first + offset) << level, (first + offset + 1) << level
                assert node == merkle.append_leaves(0, [], log.leaves[lo:hi]).root, (path, offset)
    for path in set(files) - files_of_size(size) - {CHECKPOINT}:  # only older partials of partial tiles
        tile = parse_tile_path(path)
        assert tile.is_partial and tile_at(tile.level, tile.index, size).is_partial, path


def test_writer_follows_growth_prunes_partials_and_crosses_a_level_1_tile(tmp_path: Path) -> None:
    root = tmp_path / "tiles"
    with built_log(tmp_path) as (runner, log):
        static = StaticTiles(log.storage, root)
        runner.run(log.grow(0))
        assert runner.run(static.sync()).checkpoint_written
        assert tree_files(root) == {CHECKPOINT: log.head.checkpoint if log.head else b""}
        sizes = [5, 200, 256, 300, 511, 513, 65535, 65536 + 700]
        for size in sizes:
            runner.run(log.grow(size))
            result = runner.run(static.sync())
            assert result.size == size and result.checkpoint_written
            check_directory(root, log)
        assert not (root / "tile/0/000.p").exists() and not (root / "tile/entries/001.p").exists()
        assert not (root / "tile/1/000.p").exists()  # level-1 tile 0 became full: its partials are gone
        assert (root / "tile/1/000").stat().st_size == TILE_WIDTH * 32  # a full level-1 tile
        assert (root / "tile/2/000.p/1").exists()
        assert (root / "tile/0/258.p/188").exists() and (root / "tile/1/001.p/2").exists()  # 66236 = 256*258+188
        assert oct((root / "tile/0/000").stat().st_mode & 0o777) == "0o644"  # readable by a web server
        # Nothing new: nothing written.
        again = runner.run(static.sync())
        assert (again.written, again.checkpoint_written) == (0, False)
        # Cosignatures arrive for the same size: the checkpoint file follows, no tile is rewritten.
        assert log.head is not None
        text = parse_note(log.head.checkpoint).text
        cosigned = sign_note(text, [log.key, Ed25519Signer("witness.example", seed(8))])
        runner.run(log.storage.set_cosigned(log.head.size, cosigned))
        again = runner.run(static.sync())
        assert (again.written, again.checkpoint_written) == (0, True)
        assert (root / CHECKPOINT).read_bytes() == cosigned != log.head.checkpoint


def test_the_export_check_authenticates_the_directory_against_its_checkpoint(tmp_path: Path) -> None:
    """`--verify` ends by reading the directory back as a client would (tlogcore.tileauth): every tile and entry
    bundle must hash up to the checkpoint's root. A same-length change in a file is named, as is a missing one."""
    root = tmp_path / "tiles"
    with built_log(tmp_path) as (runner, log):
        runner.run(log.grow(TILE_WIDTH * 3 + 9))
        runner.run(StaticTiles(log.storage, root).sync(verify=True))
        assert authenticate_directory(root) == TILE_WIDTH * 3 + 9
        for path in ("tile/0/001", "tile/entries/002", "tile/0/003.p/9", "tile/entries/003.p/9"):
            good = (root / path).read_bytes()
            (root / path).write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
            with pytest.raises(StaticTilesError, match=r"tile/(0|entries)/00"):
                authenticate_directory(root)
            (root / path).unlink()
            with pytest.raises(StaticTilesError, match="cannot read it"):
                authenticate_directory(root)
            (root / path).write_bytes(good)
        assert authenticate_directory(root) == TILE_WIDTH * 3 + 9


def test_first_sync_heals_missing_and_damaged_files_and_never_rolls_back(tmp_path: Path) -> None:
    root = tmp_path / "tiles"
    with built_log(tmp_path) as (runner, log):
        runner.run(log.grow(700))
        runner.run(StaticTiles(log.storage, root).sync())
        (root / "tile/0/001").unlink()
        (root / "tile/entries/000").unlink()
        (root / "tile/0/000").write_bytes(b"short")  # a damaged hash tile: the wrong length
        (root / "tile/1/000.p/2").unlink()
        (root / CHECKPOINT).write_bytes(b"garbage")
        (root / "tile/0/000.p").mkdir()  # a partial left behind by a crash before pruning
        (root / "tile/0/000.p/9").write_bytes(b"x" * 9 * 32)
        result = runner.run(StaticTiles(log.storage, root).sync())  # a new process: it scans everything
        assert (result.written, result.checkpoint_written, result.pruned) == (4, True, 1)
        check_directory(root, log)
        # A same-length alteration is only found by --verify (byte for byte).
        (root / "tile/entries/001").write_bytes(b"\x00\x07entry X" + (root / "tile/entries/001").read_bytes()[9:])
        assert runner.run(StaticTiles(log.storage, root).sync()).written == 0
        assert runner.run(StaticTiles(log.storage, root).sync(verify=True)).written == 1
        check_directory(root, log)
        # A directory ahead of the database (restored from an older backup) is refused, not rolled back.
        ahead = sign_note(Checkpoint(log.key.name, 900, b"\x01" * 32).text, [log.key])
        (root / CHECKPOINT).write_bytes(ahead)
        with pytest.raises(StaticTilesError, match="beyond the published 700"):
            runner.run(StaticTiles(log.storage, root).sync())
        assert (root / CHECKPOINT).read_bytes() == ahead
        other = sign_note(Checkpoint("another.example/log", 1, b"\x01" * 32).text, [Ed25519Signer("o", seed(6))])
        (root / CHECKPOINT).write_bytes(other)
        with pytest.raises(StaticTilesError, match=r"another\.example/log"):
            runner.run(StaticTiles(log.storage, root).sync())


# --- end to end: a real log with a witness, read back through a plain static file server --------------------


@contextmanager
def static_server(directory: Path) -> Iterator[str]:
    """`python -m http.server` on 127.0.0.1 serving `directory`: files only, no knowledge of the log."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), 10, "the static file server")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _answers(url: str) -> bool:
    try:
        httpx.get(url + "/", timeout=1)
        return True
    except httpx.TransportError:
        return False


def shown_size(root: Path) -> int:
    try:
        return parse_checkpoint(parse_note((root / CHECKPOINT).read_bytes()).text).size
    except (OSError, TlogError):
        return -1


@pytest.fixture
def witnessed_log(tmp_path: Path) -> Iterator[tuple[LogProcess, WitnessProcess, str, str, str, Path]]:
    ident = log_identity(tmp_path / "log")
    origin, log_vkey, registry_vkey = ident.origin, ident.log_vkey, ident.registry_vkey
    witness = WitnessProcess(tmp_path / "w", write_config(tmp_path / "w.toml", "w.example.org", [(origin, log_vkey)]))
    witness.start()
    tiles = tmp_path / "tiles"
    config = tmp_path / "log.toml"
    config.write_text(
        f'[static]\ntiles_dir = {json.dumps(str(tiles))}\n[[witness]]\nurl = "{witness.url}"\nvkey = "{witness.vkey}"\n'
    )
    server = LogProcess(tmp_path / "log", free_port(), config=config).start()
    try:
        yield server, witness, origin, log_vkey, registry_vkey, tiles
    finally:
        server.stop()
        witness.stop()


def fill(server: LogProcess, origin: str, batches: list[int], register: bool = True) -> int:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        if register:
            register_issuer(client, server, ISSUER)
        for count in batches:
            documents = [hashlib.sha256(b"document %d" % next(DOCUMENTS)).digest() for _ in range(count)]
            statements = [issue(origin, ISSUER, d) for d in documents]
            assert post_statements(client, statements).status_code == 200
        return int(client.get("/api/v1/log").json()["size"])


def assert_same_as_log(root: Path, log_url: str, static_url: str) -> dict[str, bytes]:
    """Every file the directory holds, fetched from the static server, equals the log's own HTTP answer."""
    files = tree_files(root)
    with httpx.Client(timeout=10) as log_http, httpx.Client(timeout=10) as static_http:
        for path, body in files.items():
            served = static_http.get(f"{static_url}/{path}")
            assert served.status_code == 200 and served.content == body, path
            assert log_http.get(f"{log_url}/{path}").content == body, f"{path} differs from the log's answer"
    return files


def test_static_directory_serves_the_whole_read_path(
    witnessed_log: tuple[LogProcess, WitnessProcess, str, str, str, Path], tmp_path: Path
) -> None:
    server, witness, origin, log_vkey, registry_vkey, tiles = witnessed_log
    size = fill(server, origin, [300, 250, 1, 200])  # 752 entries: crosses two tile boundaries
    assert size == 752
    wait_for(lambda: shown_size(tiles) == size, 15, "the directory to show the last checkpoint")
    policy_text = f"log {log_vkey}\nwitness W {witness.vkey}\nquorum W\n"
    with static_server(tiles) as static_url:
        note = httpx.get(f"{static_url}/checkpoint").content
        trusted = parse_policy(policy_text).verify_checkpoint(note, now=time.time())
        assert trusted.witnesses == {"W"} and trusted.checkpoint.size == size
        files = assert_same_as_log(tiles, server.url, static_url)
        assert files_of_size(size) <= set(files)
        assert not (tiles / "tile/0/000.p").exists() and not (tiles / "tile/entries/001.p").exists()
        # Independently of the monitor: the bundles' leaves hash to the level-0 tiles and to the signed root.
        leaves: list[bytes] = []
        for n in range(-(-size // TILE_WIDTH)):
            bundle = tile_at(ENTRIES_LEVEL, n, size)
            entries = decode_entry_bundle(files[bundle.path], bundle.width)
            hashes = [merkle.leaf_hash(e) for e in entries]
            assert b"".join(hashes) == files[Tile(0, n, bundle.width).path]
            leaves += hashes
        assert merkle.append_leaves(0, [], leaves).root == trusted.checkpoint.root
        # The real monitor audits the log from the static server alone (checkpoint + tiles + bundles).
        config = tmp_path / "monitor.toml"
        config.write_text(
            f'state = "{tmp_path / "monitor.db"}"\n\n[[log]]\nurl = {json.dumps(static_url)}\n'
            f"policy = {json.dumps(policy_text)}\nregistry_vkeys = [{json.dumps(registry_vkey)}]\n\n"
            f'[[sink]]\ntype = "file"\npath = "{tmp_path / "alerts.jsonl"}"\n'
        )
        audit = subprocess.run(
            [*MONITOR, "audit-once", "--config", str(config)], cwd=REPO, capture_output=True, text=True, timeout=120
        )
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert not (tmp_path / "alerts.jsonl").exists() or not (tmp_path / "alerts.jsonl").read_text().strip()


def test_directory_heals_on_restart_and_export_matches(tmp_path: Path) -> None:
    """Without witnesses (a witness would re-cosign on restart, changing the checkpoint's bytes)."""
    tiles = tmp_path / "tiles"
    config = tmp_path / "log.toml"
    config.write_text(f"[static]\ntiles_dir = {json.dumps(str(tiles))}\n")
    server = LogProcess(tmp_path / "log", free_port(), config=config).start()
    try:
        heal_and_export(server, tiles, tmp_path)
    finally:
        server.stop()


def heal_and_export(server: LogProcess, tiles: Path, tmp_path: Path) -> None:
    origin = httpx.get(server.url + "/api/v1/log").json()["origin"]
    size = fill(server, origin, [270])
    wait_for(lambda: shown_size(tiles) == size, 15, "the directory to show the last checkpoint")
    server.stop()
    before = tree_files(tiles)
    # What a crash between the database commit and the file writes (or an operator) could leave behind.
    (tiles / CHECKPOINT).unlink()
    (tiles / "tile/0/000").unlink()
    (tiles / "tile/entries/001.p/15").unlink()
    (tiles / "tile/0/001.p/15").write_bytes(b"\x00" * 7)
    server.start()
    wait_for(lambda: shown_size(tiles) == size, 15, "the directory to heal")
    assert tree_files(tiles) == before
    # A new, empty directory filled by the one-shot export equals the one the server kept.
    exported = tmp_path / "exported"
    run = subprocess.run(
        [*SERVER, "export-tiles", "--data", str(server.data), "--out", str(exported)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert f"size {size}: wrote {len(files_of_size(size))} tile files" in run.stdout
    assert tree_files(exported) == tree_files(tiles)
    with static_server(exported) as static_url:
        assert_same_as_log(exported, server.url, static_url)


def test_only_the_sequencing_process_writes_and_a_takeover_catches_up(tmp_path: Path) -> None:
    tiles, idle_tiles = tmp_path / "tiles", tmp_path / "idle-tiles"
    lease = "[sequencer]\nlease_ttl_seconds = 1.0\n"
    (tmp_path / "a.toml").write_text(f"{lease}[static]\ntiles_dir = {json.dumps(str(tiles))}\n")
    (tmp_path / "b.toml").write_text(f"{lease}[static]\ntiles_dir = {json.dumps(str(idle_tiles))}\n")
    first = LogProcess(tmp_path / "log", free_port(), config=tmp_path / "a.toml").start()
    second = LogProcess(tmp_path / "log", free_port(), config=tmp_path / "b.toml")
    try:
        origin = httpx.get(first.url + "/api/v1/log").json()["origin"]
        fill(first, origin, [10])
        second.start()  # a reader on the same database
        assert httpx.get(second.url + "/api/v1/log").json()["sequencing"] is False
        size = fill(first, origin, [260], register=False)
        wait_for(lambda: shown_size(tiles) == size, 15, "the sequencer's directory")
        time.sleep(1.5)  # more than the writer's poll interval: the reading process had its chance to write
        assert not idle_tiles.exists() or not any(idle_tiles.iterdir())
        # The sequencer dies; the reader takes over the lease and brings its own directory up to date.
        first.kill()
        wait_for(lambda: httpx.get(second.url + "/api/v1/log").json()["sequencing"], 15, "the takeover")
        wait_for(lambda: shown_size(idle_tiles) == size, 15, "the new sequencer's directory")
        caught_up = tree_files(idle_tiles)
        assert {p: tree_files(tiles)[p] for p in files_of_size(size) | {CHECKPOINT}} == caught_up
        assert fill(second, origin, [5], register=False) == size + 5
        size += 5
        wait_for(lambda: shown_size(idle_tiles) == size, 15, "the new sequencer's directory to follow")
    finally:
        second.stop()
        first.stop()


def test_unwritable_tiles_dir_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    config = tmp_path / "log.toml"
    config.write_text(f"[static]\ntiles_dir = {json.dumps(str(blocker / 'tiles'))}\n")
    log_identity(tmp_path / "log")
    (tmp_path / "log" / "log.db").touch()  # export-tiles wants a database before it looks at --out
    for args in (
        ["serve", "--data", str(tmp_path / "log"), "--listen", f"127.0.0.1:{free_port()}", "--config", str(config)],
        ["export-tiles", "--data", str(tmp_path / "log"), "--out", str(blocker / "tiles")],
    ):
        run = subprocess.run([*SERVER, *args], cwd=REPO, capture_output=True, text=True, timeout=30)
        assert run.returncode == 1, run.stderr
        assert run.stderr.splitlines() == [
            f"Error: static tiles_dir {str(blocker / 'tiles')!r} is not a writable directory: Not a directory"
        ]
        assert blocker.read_text() == "not a directory"  # nothing was written over it
