"""A witness down for a while: the client sees it unavailable, then catches up through the 409's known size."""

import asyncio
from pathlib import Path

import pytest
from witness_helpers import TinyLog, WitnessProcess, tiny_log, write_config

from tlogcore.note import open_note
from tlogcore.vkeys import parse_verifier_key
from witness.client import ConflictError, WitnessClient, WitnessUnavailableError


async def cosign(client: WitnessClient, log: TinyLog, believed_old: int, size: int) -> tuple[list[str], int]:
    """What a log server does: send from the size it believes; on 409, resend once from the size the witness knows."""
    try:
        return await client.add_checkpoint(believed_old, log.proof(believed_old, size), log.checkpoint(size)), 0
    except ConflictError as conflict:
        known = conflict.known_size
        return await client.add_checkpoint(known, log.proof(known, size), log.checkpoint(size)), known


def test_witness_down_then_back_and_the_client_catches_up(tmp_path: Path) -> None:
    log = tiny_log()
    config = write_config(tmp_path / "w.toml", "witness.catchup.test", [(log.origin, log.vkey)])
    witness = WitnessProcess(tmp_path / "data", config)

    async def scenario() -> None:
        async with WitnessClient(witness.url, timeout=5) as client:
            witness.start()
            assert await client.latest_checkpoint(log.origin) is None
            lines, _ = await cosign(client, log, 0, 3)
            witness.stop()  # down for a while…
            for size in (4, 9, 17):  # …while the log grows without it
                with pytest.raises(WitnessUnavailableError):
                    await cosign(client, log, 3, size)
            witness.start()  # back, with its state
            lines, learned = await cosign(client, log, 0, 40)  # e.g. a log server restarted: believes 0
            assert learned == 3
            key = parse_verifier_key(witness.vkey)
            note = log.checkpoint(40) + "".join(lines).encode()
            assert open_note(note, [log.key.verifier(), key]).verified_by(key) is not None
            latest = await client.latest_checkpoint(log.origin)
            assert latest is not None and latest.startswith(log.checkpoint(40))

    try:
        with pytest.raises(WitnessUnavailableError, match="ConnectError"):
            asyncio.run(probe_down(witness.url))
        asyncio.run(scenario())
    finally:
        witness.stop()


async def probe_down(url: str) -> None:
    async with WitnessClient(url, timeout=2) as client:
        await client.add_checkpoint(0, [], b"x\n\n")
