"""Durability: kill -9 the server during a stream of submissions, again and again.

After every restart each acknowledged entry is at its acknowledged index, the
tree verifies, and no two checkpoints of the same size ever differ.
"""

import base64
import random
import threading
import time
from pathlib import Path

import httpx
from log_harness import LogProcess, free_port, issue, log_verifier, post_statements, register_issuer, seed
from log_verifier import verified_checkpoint

from tlogcore import merkle
from tlogcore.checkpoint import Checkpoint, parse_checkpoint
from tlogcore.keys import Ed25519Signer
from tlogcore.note import open_note
from tlogcore.tiles import decode_entry_bundle, entry_bundle_for

KILLS = 20
ISSUER = Ed25519Signer("registry-office.example.gov.kh", seed(21))


class Submitter(threading.Thread):
    def __init__(
        self,
        url: str,
        origin: str,
        log_key,
        rng: random.Random,
        acked: dict[bytes, int],  # type: ignore[no-untyped-def]
        checkpoints: dict[int, set[bytes]],
        lock: threading.Lock,
    ) -> None:
        super().__init__(daemon=True)
        self.url, self.origin, self.log_key, self.rng = url, origin, log_key, rng
        self.acked, self.checkpoints, self.lock = acked, checkpoints, lock
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self.stop.is_set():
                batch = [issue(self.origin, ISSUER, self.rng.randbytes(32)) for _ in range(self.rng.randint(1, 40))]
                try:
                    response = post_statements(client, batch)
                except httpx.HTTPError:
                    time.sleep(0.02)
                    continue
                if response.status_code != 200:
                    continue
                body = response.json()
                checkpoint = parse_checkpoint(open_note(body["checkpoint"].encode(), [self.log_key]).text)
                with self.lock:
                    self.checkpoints.setdefault(checkpoint.size, set()).add(checkpoint.root)
                    for statement, entry in zip(batch, body["entries"], strict=True):
                        leaf = merkle.leaf_hash(statement)
                        assert self.acked.setdefault(leaf, entry["index"]) == entry["index"]


def test_kill_9_during_submissions_loses_nothing_and_never_forks(tmp_path: Path, log_dsn: str | None) -> None:
    rng = random.Random(99)
    server = LogProcess(tmp_path / "log", free_port(), dsn=log_dsn).start()
    acked: dict[bytes, int] = {}
    checkpoints: dict[int, set[bytes]] = {}
    lock = threading.Lock()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            log_key = log_verifier(client)
            register_issuer(client, server, ISSUER)
            origin = client.get("/api/v1/log").json()["origin"]
            for _ in range(KILLS if log_dsn is None else KILLS // 2):  # PostgreSQL: half, to bound run time
                submitters = [
                    Submitter(server.url, origin, log_key, random.Random(rng.random()), acked, checkpoints, lock)
                    for _ in range(2)
                ]
                for s in submitters:
                    s.start()
                time.sleep(rng.uniform(0.3, 0.9))
                server.kill()
                for s in submitters:
                    s.stop.set()
                    s.join(10)
                server.start()
                check_log(client, log_key, acked, checkpoints)
        assert len(acked) > 500, "the stream was too thin to mean anything"
    finally:
        server.stop()


def check_log(client: httpx.Client, log_key, acked: dict[bytes, int], checkpoints: dict[int, set[bytes]]) -> None:  # type: ignore[no-untyped-def]
    final: Checkpoint = verified_checkpoint(client, log_key)
    for size, roots in checkpoints.items():
        assert len(roots) == 1, f"two different roots for size {size}: a fork"
        assert size <= final.size
        root = next(iter(roots))
        proof = client.get("/api/v1/proof/consistency", params={"old": size, "new": final.size}).json()["proof"]
        merkle.verify_consistency(size, final.size, root, final.root, [base64.b64decode(h) for h in proof])
    assert all(index < final.size for index in acked.values()), "an acknowledged entry is missing"
    sample = random.Random(final.size).sample(sorted(acked.items()), min(200, len(acked)))
    for leaf, index in sample:
        body = client.get("/api/v1/proof/inclusion", params={"leaf_hash": leaf.hex(), "size": final.size}).json()
        assert body["index"] == index, "an acknowledged entry moved"
        merkle.verify_inclusion(leaf, index, final.size, [base64.b64decode(h) for h in body["proof"]], final.root)
    # Entry bundles hold exactly the acknowledged leaves at their indexes.
    by_index = {index: leaf for leaf, index in acked.items()}
    for start in range(0, final.size, 256):
        bundle = entry_bundle_for(start, final.size)
        entries = decode_entry_bundle(client.get("/" + bundle.path).content, bundle.width)
        for offset, entry in enumerate(entries):
            if start + offset in by_index:
                assert merkle.leaf_hash(entry) == by_index[start + offset]
