"""Locust scenarios for a log server: issuers, verifiers, monitors, and a verification-heavy mix.

Run through `python -m loadtest.run_locust` (it starts a log, writes the plan this file reads from the file named
by $TLOG_LOADTEST_PLAN, runs locust headless and prints the figures). Locust monkey-patches the standard library
with gevent when it loads this file, so nothing else in the project imports it.

User classes (pass their names to locust to pick a scenario; all three together are the mix, by `weight`):
- `IssuerUser`: a registered issuer submitting signed `issue` statements, mostly in batches, some one at a time;
  it appends the leaf hash and index of one entry per request to a file, so the caller can check them afterwards.
- `VerifierUser`: proof bundles, document lookups (known and unknown hashes), inclusion proofs by leaf hash,
  consistency proofs, the checkpoint.
- `MonitorUser`: the checkpoint, full hash tiles (levels 0 and 1), entry bundles, and the right-edge partial tile.
"""

import base64
import hashlib
import json
import os
import random
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, constant, task

from tlogcore.keys import Ed25519Signer
from tlogcore.statement import ISSUE, Statement, sign_statement
from tlogcore.tiles import ENTRIES_LEVEL, TILE_HEIGHT, TILE_WIDTH, Tile, tile_at

PLAN: dict[str, Any] = json.loads(Path(os.environ["TLOG_LOADTEST_PLAN"]).read_text(encoding="utf-8"))
SIZE: int = PLAN["size"]  # entries preloaded before the run: reads stay inside them
SAMPLE: list[dict[str, Any]] = PLAN["sample"]  # preloaded entries: index, leaf_hash, document (hex)
THINK: float = PLAN["think_seconds"]


def think() -> Any:
    """Closed loop (no pause) by default, to find the ceiling; otherwise a random pause averaging THINK seconds."""
    return between(0, 2 * THINK) if THINK > 0 else constant(0)


class IssuerUser(FastHttpUser):
    """An issuer's bulk-signing job: batches of statements (the server's maximum is 1000), some singles."""

    weight = 1
    wait_time = think()

    def on_start(self) -> None:
        self.signer = Ed25519Signer(PLAN["issuer_name"], bytes.fromhex(PLAN["issuer_seed"]))
        self.vkey = self.signer.verifier().vkey
        self.tag = f"{os.getpid()}-{random.getrandbits(64):016x}"  # distinct documents per user and run
        self.count = 0
        self.record = Path(PLAN["submitted_dir"]) / f"submitted-{self.tag}.txt"

    def statements(self, count: int) -> list[str]:
        now, signed = int(time.time()), []
        for _ in range(count):
            self.count += 1
            document = hashlib.sha256(f"locust {self.tag} {self.count}".encode()).digest()
            statement = Statement(
                PLAN["origin"], ISSUE, self.vkey, now, document=document, ref=f"Load test {self.count}"
            )
            signed.append(base64.b64encode(sign_statement(statement, self.signer)).decode())
        return signed

    def submit(self, count: int, name: str) -> None:
        body = {"statements": self.statements(count)}
        with self.client.post("/api/v1/entries", json=body, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            entries = response.json()["entries"]
            if len(entries) != count or any(e["duplicate"] for e in entries):
                response.failure(f"expected {count} new entries, got {entries[:3]}")
                return
            last = entries[-1]
            with self.record.open("a", encoding="utf-8") as record:
                record.write(f"{last['leaf_hash']} {last['index']}\n")

    @task(3)
    def submit_batch(self) -> None:
        self.submit(PLAN["batch_size"], f"POST /api/v1/entries (batch of {PLAN['batch_size']})")

    @task(1)
    def submit_single(self) -> None:
        self.submit(1, "POST /api/v1/entries (single)")


class VerifierUser(FastHttpUser):
    """Employers, families and registrars checking documents (the bulk of the traffic on a results day)."""

    weight = 16
    wait_time = think()

    @task(4)
    def bundle(self) -> None:
        self.client.get(f"/api/v1/bundle/{random.choice(SAMPLE)['index']}", name="GET /api/v1/bundle/[index]")

    @task(3)
    def document(self) -> None:
        self.client.get(f"/api/v1/documents/{random.choice(SAMPLE)['document']}", name="GET /api/v1/documents/[known]")

    @task(1)
    def unknown_document(self) -> None:
        # a forged or never-logged document: the lookup must still answer (status "unknown")
        self.client.get(f"/api/v1/documents/{random.randbytes(32).hex()}", name="GET /api/v1/documents/[unknown]")

    @task(2)
    def inclusion(self) -> None:
        leaf = random.choice(SAMPLE)["leaf_hash"]
        self.client.get(f"/api/v1/proof/inclusion?leaf_hash={leaf}", name="GET /api/v1/proof/inclusion?leaf_hash")

    @task(1)
    def consistency(self) -> None:
        old = random.randrange(1, SIZE)
        self.client.get(f"/api/v1/proof/consistency?old={old}", name="GET /api/v1/proof/consistency?old")

    @task(1)
    def checkpoint(self) -> None:
        self.client.get("/checkpoint", name="GET /checkpoint")


class MonitorUser(FastHttpUser):
    """Monitors and mirrors following the log through its static (CDN-cacheable) endpoints."""

    weight = 3
    wait_time = think()

    def full_tile(self, level: int) -> Tile:
        count = SIZE if level == ENTRIES_LEVEL else SIZE >> (TILE_HEIGHT * level)
        return Tile(level, random.randrange(max(1, count // TILE_WIDTH)))

    @task(1)
    def checkpoint_and_edge(self) -> None:
        with self.client.get("/checkpoint", name="GET /checkpoint", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
            size = int(response.text.split("\n")[1])
        edge = tile_at(0, (size - 1) // TILE_WIDTH, size)
        self.client.get("/" + edge.path, name="GET /tile/0/[right edge]")

    @task(6)
    def level0_tile(self) -> None:
        self.client.get("/" + self.full_tile(0).path, name="GET /tile/0/[N]")

    @task(1)
    def level1_tile(self) -> None:
        tile = tile_at(1, 0, SIZE) if SIZE < TILE_WIDTH**2 else self.full_tile(1)
        self.client.get("/" + tile.path, name="GET /tile/1/[N]")

    @task(4)
    def entry_bundle(self) -> None:
        self.client.get("/" + self.full_tile(ENTRIES_LEVEL).path, name="GET /tile/entries/[N]")
