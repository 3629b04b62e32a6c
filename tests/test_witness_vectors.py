"""Replay tests/vectors/witness/add_checkpoint_sequence.json against real witnesses over HTTP.

Statuses are the vectors' `spec_status` (c2sp.org/tlog-witness: 404 for an
unknown origin, where litewitness answered 403). The witness is configured
with the vector's one log, so step 3's origin (…e563) is unknown to it.
"""

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import httpx
from conftest import load_vectors
from witness_helpers import WitnessProcess, serve_in_process, write_key

from tlogcore.checkpoint import parse_checkpoint
from tlogcore.cosignature import CosignatureV1Signer, signature_timestamp
from tlogcore.note import open_note
from tlogcore.vkeys import parse_verifier_key
from witness.app import create_app
from witness.config import parse_config
from witness.storage import SQLiteStorage

SEQUENCE: dict[str, Any] = load_vectors("witness/add_checkpoint_sequence.json")
ORIGIN: str = SEQUENCE["log_origin"]
WITNESS: dict[str, str] = SEQUENCE["witness"]
PINNED = 1_700_000_000
CHECKPOINT_PATH = f"/{hashlib.sha256(ORIGIN.encode()).hexdigest()}/checkpoint"


def config_text() -> str:
    return f'name = "{WITNESS["name"]}"\n[[log]]\norigin = "{ORIGIN}"\nvkey = "{SEQUENCE["log_vkey"]}"\n'


async def stored_size(http: httpx.AsyncClient) -> int | None:
    """The size of the witness's latest cosigned checkpoint, read back through the monitoring endpoint."""
    response = await http.get(CHECKPOINT_PATH)
    if response.status_code == 404:
        return None
    assert response.status_code == 200
    verifiers = [parse_verifier_key(SEQUENCE["log_vkey"]), parse_verifier_key(WITNESS["vkey"])]
    opened = open_note(response.content, verifiers)
    assert len(opened.verified) == 2  # the log's signature and this witness's cosignature
    return parse_checkpoint(opened.text).size


async def replay(url: str, pinned: bool) -> None:
    witness_key = parse_verifier_key(WITNESS["vkey"])
    log_key = parse_verifier_key(SEQUENCE["log_vkey"])
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        for step in SEQUENCE["steps"]:
            where = f"step {step['step']}"
            assert await stored_size(http) == step["witness_state_before"], where
            request = step["request_body"].encode()
            response = await http.post("/add-checkpoint", content=request)
            assert response.status_code == step["spec_status"], (where, response.text)
            if "expect_body" in step:
                assert response.text == step["expect_body"], where
            if "expect_content_type" in step:
                assert response.headers["content-type"] == step["expect_content_type"], where
            if "expect_body_contains" in step:
                assert step["expect_body_contains"] in response.text, where
            if response.status_code == 200:
                # The returned line cosigns the request's checkpoint: append it and verify as a client would.
                note = request.split(b"\n\n", 1)[1] + response.content
                opened = open_note(note, [log_key, witness_key])
                cosignature = opened.verified_by(witness_key)
                assert cosignature is not None, where
                if pinned:
                    assert response.text == step["derived_cosignature_line_at_timestamp_1700000000"], where
                    assert signature_timestamp(cosignature.signature) == PINNED
            assert await stored_size(http) == step["witness_state_after"], where


def test_replay_with_pinned_clock_is_byte_exact(tmp_path: Path) -> None:
    async def run() -> None:
        storage = await SQLiteStorage.open(str(tmp_path / "witness.sqlite"))
        try:
            signer = CosignatureV1Signer(WITNESS["name"], bytes.fromhex(WITNESS["ed25519_seed_hex"]), lambda: PINNED)
            assert signer.verifier().vkey == WITNESS["vkey"]
            app = create_app(parse_config(config_text()), storage, signer, lambda: PINNED)
            async with serve_in_process(app) as url:
                await replay(url, pinned=True)
        finally:
            await storage.close()

    asyncio.run(run())


def test_replay_against_the_cli_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_key(data, WITNESS["name"], bytes.fromhex(WITNESS["ed25519_seed_hex"]))
    config = tmp_path / "witness.toml"
    config.write_text(config_text(), encoding="utf-8")
    with WitnessProcess(data, config) as witness:
        assert witness.vkey == WITNESS["vkey"]
        asyncio.run(replay(witness.url, pinned=False))
