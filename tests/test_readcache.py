"""The read cache (logserver/readcache.py) never changes an answer: `GET /api/v1/documents/<sha256>` gives the same
bytes from a warm cache as from a server with no cache, before and after the log moves on, and a revocation logged
after a cached lookup shows at once."""

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import httpx

from logserver.readcache import NEWEST_LOGGED_SECONDS, Lru, ReadCache
from logserver.statusstore import IndexVersion
from tests.api_helpers import ISSUER, REGISTRY_KEY, app_client, statement
from tlogcore.statement import ISSUE, ISSUER_ADD, REVOKE

DOCS = [hashlib.sha256(b"readcache %d" % i).digest() for i in range(3)]
NEVER = hashlib.sha256(b"readcache never").digest()


def test_lru_keeps_the_recently_used_within_its_bound() -> None:
    lru: Lru[int, str] = Lru(2)
    lru.put(1, "a")
    lru.put(2, "b")
    assert lru.get(1) == "a"  # 1 is now the most recently used
    lru.put(3, "c")
    assert (lru.get(2), lru.get(1), lru.get(3), len(lru)) == (None, "a", "c", 2)
    off: Lru[int, str] = Lru(0)
    assert off.put(1, "a") == "a" and off.get(1) is None and len(off) == 0


def test_the_newest_logged_index_version_is_read_again_after_its_lifetime_or_once_forgotten() -> None:
    """The one kept part that is not a function of its key: at most NEWEST_LOGGED_SECONDS old, per checkpoint size;
    forgotten when a lookup found its version pruned; never kept by a cache of no entries."""
    versions = {100: IndexVersion(90, b"\x01" * 32, 1, 95)}
    reads: list[int] = []

    async def read(below: int) -> IndexVersion | None:
        reads.append(below)
        return versions.get(below)

    async def scenario() -> None:
        now = [1000.0]
        cache = ReadCache(None, clock=lambda: now[0])  # type: ignore[arg-type]  # no storage read here

        async def served(below: int, into: ReadCache = cache) -> int | None:
            version = await into.newest_logged(below, read)
            return version.size if version is not None else None

        assert await served(100) == 90 and reads == [100]
        versions[100] = IndexVersion(99, b"\x02" * 32, 2, 99)  # a newer version's statement recorded late
        now[0] += NEWEST_LOGGED_SECONDS / 2
        assert await served(100) == 90 and reads == [100]  # kept: at most its lifetime old
        assert await served(50) is None and reads == [100, 50]  # another checkpoint's size: read
        assert await served(100) == 99 and reads == [100, 50, 100]
        now[0] += NEWEST_LOGGED_SECONDS
        assert await served(100) == 99 and len(reads) == 4  # past its lifetime: read again
        cache.forget_newest_logged()
        assert await served(100) == 99 and len(reads) == 5
        uncached = ReadCache(None, 0, clock=lambda: now[0])  # type: ignore[arg-type]
        assert await served(100, uncached) == await served(100, uncached) == 99 and len(reads) == 7

    asyncio.run(scenario())


async def answers(raw: httpx.AsyncClient, uncached: httpx.AsyncClient) -> list[tuple[bytes, bytes]]:
    """Each document's answer twice from the cached server (cold, then warm) and once from the uncached one."""
    found = []
    for digest in [*DOCS, NEVER]:
        path = f"/api/v1/documents/{digest.hex()}"
        cold, warm, plain = (await raw.get(path)), (await raw.get(path)), (await uncached.get(path))
        assert cold.status_code == warm.status_code == plain.status_code == 200, plain.text
        assert cold.content == warm.content == plain.content, digest.hex()
        found.append((digest, warm.content))
    return found


def test_answers_are_the_same_bytes_warm_cold_and_uncached_as_the_log_moves(tmp_path: Path) -> None:
    apps: list[Any] = []

    def keep(app: Any) -> Any:
        apps.append(app)
        return app

    async def scenario() -> None:
        async with app_client(tmp_path, keep, indexed=True) as (client, raw):
            state = apps[0].state.log
            transport = httpx.ASGITransport(app=apps[0])
            async with httpx.AsyncClient(transport=transport, base_url="http://log.test") as uncached:

                async def no_cache(request: httpx.Request) -> None:
                    state.reads = ReadCache(state.storage, 0)  # this request is answered with nothing remembered

                async def with_cache(request: httpx.Request) -> None:
                    state.reads = warm_cache

                warm_cache = state.reads
                uncached.event_hooks["request"] = [no_cache]
                raw.event_hooks["request"] = [with_cache]
                await client.submit([statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="M")])
                await client.submit([statement(ISSUE, ISSUER, document=d) for d in DOCS])
                before = dict(await answers(raw, uncached))
                assert len(warm_cache.bundles) and len(warm_cache.statements)
                revoked = await client.submit([statement(REVOKE, ISSUER, document=DOCS[1], reason="error")])
                after = dict(await answers(raw, uncached))
                assert b'"revoked"' in after[DOCS[1]] and b'"revoked"' not in before[DOCS[1]]  # shown at once
                assert after[DOCS[0]] != before[DOCS[0]]  # proven under the new checkpoint, not the cached one
                covered = False
                for _ in range(200):  # until the index covers the revocation: a new version, new cache keys
                    index = (await client.document(NEVER)).index
                    covered = index is not None and index.size > revoked.entries[0].index
                    if covered:
                        break
                    await asyncio.sleep(0.05)
                assert covered, "the status index did not cover the revocation within 10 s"
                indexed = dict(await answers(raw, uncached))
                assert indexed[DOCS[1]] != after[DOCS[1]]  # the status proof of the new version

    asyncio.run(scenario())
