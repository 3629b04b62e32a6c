"""`tlog proof ... --from-tiles` (tools/tileproofs.py): proofs from the log's tiles, each tile authenticated
against the checkpoint (tlogcore.tileauth), equal to the proof API's; a tile that does not hash up to the root is
refused. The real app in-process (tests/api_helpers.py)."""

import asyncio
import hashlib
from pathlib import Path

import pytest

from tests.api_helpers import ISSUER, REGISTRY_KEY, app_client, corrupting, statement
from tlogcore import merkle
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.errors import ProofError
from tlogcore.note import parse_note
from tlogcore.statement import ISSUE, ISSUER_ADD
from tools.tileproofs import proof_from_tiles

COUNT = 300  # more than one level-0 tile: proofs cross a full tile and the partial one


async def grown(client) -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
    await client.submit([statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey)])
    documents = [hashlib.sha256(str(i).encode()).digest() for i in range(COUNT - 1)]
    result = await client.submit([statement(ISSUE, ISSUER, document=d) for d in documents])
    checkpoint = parse_checkpoint(parse_note(result.checkpoint).text)
    return checkpoint.size, checkpoint.root


def test_proofs_from_tiles_equal_the_apis(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with app_client(tmp_path) as (client, _):
            size, root = await grown(client)
            assert size == COUNT
            for index in (0, 255, 256, COUNT - 1):
                plan = merkle.inclusion_plan(index, size)
                assert await proof_from_tiles(client, size, root, plan) == list(
                    (await client.inclusion_proof(index, size)).proof
                )
            for old in (1, 200, 256, 299):
                plan = merkle.consistency_plan(old, size)
                assert await proof_from_tiles(client, size, root, plan) == list(
                    (await client.consistency_proof(old, size)).proof
                )

    asyncio.run(scenario())


@pytest.mark.parametrize("path", ["/tile/0/000", "/tile/0/001.p/44"])
def test_a_tile_that_does_not_hash_to_the_root_is_refused(tmp_path: Path, path: str) -> None:
    def flip(body: bytes) -> bytes:
        return body[:-1] + bytes([body[-1] ^ 1])

    async def scenario() -> None:
        async with app_client(tmp_path, corrupting(path, flip)) as (client, _):
            size, root = await grown(client)
            with pytest.raises(ProofError, match="tiles do not match its checkpoint"):
                await proof_from_tiles(client, size, root, merkle.inclusion_plan(3, size))

    asyncio.run(scenario())
