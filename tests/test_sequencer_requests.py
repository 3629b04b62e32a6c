"""The sequencer's pool holds requests, not statements: one future per submit() call (issue 20). What a request
answers must not change with that: identical statements are logged once, a statement another request already
holds answers with that request's entry (or its refusal), a request is logged or refused whole, and a registry
change logged earlier in the same batch or in the batch before applies to what follows. Through the real Sequencer,
on both engines."""

import asyncio
import time

import pytest
from test_lookup_merge import open_engine

from loadtest import log_bench
from logserver.sequencer import Sequencer, Submission
from tlogcore.errors import NotAllowedError
from tlogcore.statement import ISSUER_RETIRE, Statement

HOUR = 3600.0  # every flush here is woken by a full pool (flush_at), never by the interval


def retire_issuer(when: int) -> Submission:
    """The registry key retires the benchmark's issuer key: its issue statements are refused from then on."""
    registry, issuer = log_bench.registry_key(), log_bench.issuer_key()
    statement = Statement(
        log_bench.ORIGIN, ISSUER_RETIRE, registry.verifier().vkey, when, issuer=issuer.verifier().vkey, reason="left"
    )
    return log_bench.signed(statement, registry)


async def held(sequencer: Sequencer, *submissions: Submission) -> None:
    """Until each is with the sequencer (a PostgreSQL lookup awaits first): the next request comes after them."""
    while not all(s.leaf_hash in sequencer._pending for s in submissions):
        await asyncio.sleep(0.01)


def test_identical_statements_in_one_request_and_across_requests_are_logged_once(engine: tuple[str, str]) -> None:
    async def scenario() -> None:
        when = int(time.time()) - 60
        a, b, c = log_bench.issue_chunk((0, 3, when))
        storage = await open_engine(engine)
        try:
            async with log_bench.running_sequencer(storage, 100, flush_interval=HOUR, flush_at=1) as sequencer:
                async with asyncio.timeout(60):
                    await sequencer.submit([log_bench.issuer_add(when)])
                    sequencer.config.flush_at = 3  # the two requests below wait in the pool together
                    one = asyncio.create_task(sequencer.submit([a, b, a]))
                    await held(sequencer, a, b)
                    two = asyncio.create_task(sequencer.submit([b, c, c, a]))  # b and a are held by the first
                    first, second = await one, await two
                assert [(s.index, s.duplicate) for s in first] == [(1, False), (2, False), (1, False)]
                assert [(s.index, s.duplicate) for s in second] == [(2, False), (3, False), (3, False), (1, False)]
                assert [s.leaf_hash for s in second] == [b.leaf_hash, c.leaf_hash, c.leaf_hash, a.leaf_hash]
                assert sequencer.size == 4 and sequencer.pool_size == 0 and not sequencer._pending
                assert await storage.get_entries(0, 4) == [log_bench.issuer_add(when).data, a.data, b.data, c.data]
                async with asyncio.timeout(60):  # once logged: found, marked duplicate
                    again = await sequencer.submit([c, a])
                assert [(s.index, s.duplicate) for s in again] == [(3, True), (1, True)]
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_a_registry_change_applies_to_later_requests_of_the_same_and_the_next_batch(engine: tuple[str, str]) -> None:
    async def scenario() -> None:
        when = int(time.time()) - 60
        a, b, c, d, e = log_bench.issue_chunk((0, 5, when))
        storage = await open_engine(engine)
        try:
            async with log_bench.running_sequencer(storage, 100, flush_interval=HOUR, flush_at=1) as sequencer:
                async with asyncio.timeout(60):
                    await sequencer.submit([log_bench.issuer_add(when)])
                    sequencer.config.flush_at = 5  # the four requests below are one batch
                    early = asyncio.create_task(sequencer.submit([a]))
                    await held(sequencer, a)
                    retire = asyncio.create_task(sequencer.submit([retire_issuer(when)]))
                    await held(sequencer, retire_issuer(when))
                    late = asyncio.create_task(sequencer.submit([b, c]))  # checked on arrival: the key was active
                    await held(sequencer, b, c)
                    waiting_on_late = asyncio.create_task(sequencer.submit([c]))  # held by `late`: shares its fate
                    await asyncio.sleep(0.1)  # it finds c pending (the pool holds 4: no flush yet)
                    last = asyncio.create_task(sequencer.submit([e]))  # the fifth statement wakes the flush
                    outcomes = await asyncio.gather(early, retire, late, waiting_on_late, last, return_exceptions=True)
                assert [s.index for s in outcomes[0]] == [1]  # type: ignore[union-attr]
                assert [s.index for s in outcomes[1]] == [2]  # type: ignore[union-attr]
                assert isinstance(outcomes[2], NotAllowedError) and "nothing from this request" in str(outcomes[2])
                assert isinstance(outcomes[3], NotAllowedError) and "nothing from this request" in str(outcomes[3])
                assert isinstance(outcomes[4], NotAllowedError) and "retired" in str(outcomes[4])
                assert sequencer.size == 3 and not sequencer._pending
                sequencer.config.flush_at = 1
                with pytest.raises(NotAllowedError, match="retired"):  # the next batch: the retirement holds
                    async with asyncio.timeout(60):
                        await sequencer.submit([d])
                assert sequencer.size == 3
                assert await storage.find_leaves([s.leaf_hash for s in (b, c, d, e)]) == {}
        finally:
            await storage.close()

    asyncio.run(scenario())
