"""Soak: mixed load against a real log with three witnesses, killing (-9) the log and the witnesses as it goes.

    .venv/bin/python -m loadtest.soak --minutes 15 [--kill-every 20] [--dir DIR]

Submitters send batches and retry the identical bytes until acknowledged (idempotent: the log answers a resent
statement with its first entry); readers fetch checkpoints, proofs, bundles and tiles; a prober measures how long
an acknowledged entry takes to reach a published checkpoint with 2 of 3 cosignatures. Every `--kill-every`
seconds the log (every other time) or one witness and one of the log's signature workers are killed with SIGKILL
and restarted (the worker pool heals itself). Once, at the first log kill, the log's database is replaced by an
older copy taken at the start: the log must refuse to start on it (the key guard: it never signs beside or behind
what it signed), and starts again once the real database is back. At the end, with nothing
killed any more, it checks every acknowledged entry against the final checkpoint (a verifying inclusion proof:
"lost" counts the ones without) and every checkpoint seen (from the log, its submit answers and the witnesses)
for forks (two roots for one size, or no verifying consistency proof to the final tree), then prints the
figures. Only 127.0.0.1; starts and stops its own processes; exit status 1 if anything was lost or forked,
or if the log started on the older copy.
"""

import argparse
import base64
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from loadtest.localproc import children, free_port, rss_kib
from tlogcore.checkpoint import Checkpoint, parse_checkpoint
from tlogcore.keys import Ed25519Signer, Verifier, parse_signer_key
from tlogcore.merkle import append_leaves, leaf_hash, verify_consistency, verify_inclusion
from tlogcore.note import open_note, parse_note
from tlogcore.statement import ISSUE, ISSUER_ADD, Statement, sign_statement
from tlogcore.tiles import TILE_WIDTH, split_tile, tile_at
from tlogcore.vkeys import parse_verifier_key

REPO = Path(__file__).resolve().parent.parent
QUORUM = 2  # cosignatures the merge-delay prober waits for (2 of 3)


@dataclass
class Service:
    """One server process, restartable on the same port; remembers its peak memory over all its lives."""

    name: str
    args: list[str]
    port: int
    out: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    peak_rss_kib: int = 0
    peak_children_rss_kib: int = 0  # the log's signature-checking worker processes, together
    children_seen: set[int] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        with self.out.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-c", *self.args], cwd=REPO, stdout=out, stderr=out)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.out}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not start; see {self.out}")

    def start_expecting_refusal(self, timeout: float = 60) -> str:
        """Start, and return the one line the process printed when it refused to start ("" if it did start).
        Not counted in `starts`: a refused start is not a life of the server."""
        mark = self.out.stat().st_size if self.out.exists() else 0
        with self.out.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-c", *self.args], cwd=REPO, stdout=out, stderr=out)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return ""
        printed = self.out.read_bytes()[mark:].decode(errors="replace").splitlines()
        return next((line for line in reversed(printed) if line.startswith("Error:")), "")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill_one_worker(self) -> bool:
        """kill -9 one of this server's signature worker processes (logserver/workerpool.py: `python -m
        witness.workerprocess FD`)."""
        if self.process is None or self.process.poll() is not None:
            return False
        for pid in children(self.process.pid):
            with contextlib.suppress(OSError):
                if b"witness.workerprocess" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
                    return True
        return False

    def sample_memory(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.peak_rss_kib = max(self.peak_rss_kib, rss_kib(self.process.pid))
        pids = children(self.process.pid)
        self.children_seen.update(pids)
        workers = sum(rss_kib(c) for c in pids)
        self.peak_children_rss_kib = max(self.peak_children_rss_kib, workers)


@dataclass
class Tally:
    """Shared between the load threads; every update under the lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    served: Counter[str] = field(default_factory=Counter)  # 2xx answers per kind of request
    failed: Counter[str] = field(default_factory=Counter)  # errors and refusals, by status or exception
    acknowledged: dict[int, bytes] = field(default_factory=dict)  # index -> leaf hash
    duplicates: int = 0  # retries answered with the first entry
    roots: dict[int, set[bytes]] = field(default_factory=dict)  # every checkpoint seen: size -> roots
    acks_per_epoch: Counter[int] = field(default_factory=Counter)  # acknowledgements after each log restart
    merge_delays: list[float] = field(default_factory=list)
    epoch: int = 0

    def saw(self, size: int, root: bytes) -> None:
        with self.lock:
            self.roots.setdefault(size, set()).add(root)


class Soak:
    def __init__(self, workdir: Path, minutes: float, kill_every: float, submitters: int, readers: int) -> None:
        self.dir, self.minutes, self.kill_every = workdir, minutes, kill_every
        self.submitters, self.readers = submitters, readers
        self.tally = Tally()
        self.stop_load = threading.Event()
        self.log: Service
        self.witnesses: list[Service] = []
        self.issuer = Ed25519Signer("soak.example", os.urandom(32))
        self.origin = ""
        self.log_verifier: Verifier
        self.old_copy = self.dir / "old-copy.db"
        self.old_copy_refusal = ""  # the line the log printed when started on the older copy
        self.worker_kills = 0

    # --- setup ----------------------------------------------------------------------------------------------

    def start_services(self) -> None:
        data = self.dir / "log"
        init = [sys.executable, "-c", "from logserver.cli import main; main()", "init", "--data", str(data)]
        lines = subprocess.run(init, cwd=REPO, capture_output=True, text=True, check=True).stdout.splitlines()
        identity = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        self.origin = identity["origin"]
        self.log_verifier = parse_verifier_key(identity["log key"])
        tables = []
        for i in range(3):
            config = self.dir / f"w{i}.toml"
            config.write_text(
                f'name = "witness{i}.soak"\n\n[[log]]\norigin = "{self.origin}"\nvkey = "{identity["log key"]}"\n'
            )
            port = free_port()
            witness = Service(
                f"witness{i}",
                [
                    "from witness.cli import main; main()",
                    *("serve", "--data", str(self.dir / f"w{i}"), "--config", str(config)),
                    *("--listen", f"127.0.0.1:{port}", "--no-access-log", "--log-level", "warning"),
                ],
                port,
                self.dir / f"w{i}.out",
            )
            witness.start()
            vkey = next(ln.split()[1] for ln in witness.out.read_text().splitlines() if ln.startswith("vkey "))
            tables.append(f'[[witness]]\nurl = "{witness.url}"\nvkey = "{vkey}"\n')
            self.witnesses.append(witness)
        config = self.dir / "log.toml"
        config.write_text("[witnessing]\nwitness_timeout_ms = 1000\nwitness_retries = 1\n\n" + "".join(tables))
        port = free_port()
        self.log = Service(
            "log",
            [
                "from logserver.cli import main; main()",
                *("serve", "--data", str(data), "--config", str(config), "--listen", f"127.0.0.1:{port}"),
            ],
            port,
            self.dir / "log.out",
        )
        self.log.start()
        registry = parse_signer_key((data / "registry.key").read_text().strip())
        add = Statement(
            self.origin, ISSUER_ADD, registry.verifier().vkey, int(time.time()), issuer=self.issuer.verifier().vkey
        )
        with httpx.Client(base_url=self.log.url, timeout=30) as client:
            submitted = client.post("/api/v1/entries", json={"statements": [b64(sign_statement(add, registry))]})
            submitted.raise_for_status()
        self.take_old_copy()  # size 1: every later checkpoint is bigger, so the log must refuse this copy

    # --- load -----------------------------------------------------------------------------------------------

    def submitter(self, number: int) -> None:
        rng = random.Random(number)
        counter = 0
        with httpx.Client(base_url=self.log.url, timeout=15) as client:
            while not self.stop_load.is_set():
                batch = []
                big = number == 0 and rng.random() < 0.1  # >= 64 statements: checked by the signature workers
                for _ in range(80 if big else rng.randint(1, 20)):
                    document = f"soak {number} {counter}".encode().ljust(32, b".")[:32]
                    counter += 1
                    statement = Statement(
                        self.origin, ISSUE, self.issuer.verifier().vkey, int(time.time()), document=document
                    )
                    batch.append(sign_statement(statement, self.issuer))
                self.submit_until_acknowledged(client, batch)

    def submit_until_acknowledged(self, client: httpx.Client, batch: list[bytes]) -> list[int]:
        """Resend the same bytes until the log acknowledges them (through restarts: idempotent)."""
        body = {"statements": [b64(s) for s in batch]}
        while True:
            try:
                response = client.post("/api/v1/entries", json=body)
            except httpx.HTTPError as exc:
                self.count_failure(type(exc).__name__)
                time.sleep(0.2)
                continue
            if response.status_code != 200:
                self.count_failure(f"submit {response.status_code}")
                time.sleep(0.2)
                continue
            answer = response.json()
            checkpoint = parse_checkpoint(open_note(answer["checkpoint"].encode(), [self.log_verifier]).text)
            self.tally.saw(checkpoint.size, checkpoint.root)
            with self.tally.lock:
                self.tally.served["submit"] += 1
                for statement, entry in zip(batch, answer["entries"], strict=True):
                    self.tally.acknowledged[int(entry["index"])] = leaf_hash(statement)
                    self.tally.duplicates += bool(entry["duplicate"])
                self.tally.acks_per_epoch[self.tally.epoch] += len(batch)
            return [int(entry["index"]) for entry in answer["entries"]]

    def reader(self, number: int) -> None:
        rng = random.Random(1000 + number)
        with httpx.Client(base_url=self.log.url, timeout=10) as client:
            while not self.stop_load.is_set():
                kind = rng.choice(["checkpoint", "inclusion", "bundle", "tile", "entries"])
                with self.tally.lock:
                    known = len(self.tally.acknowledged)
                index = rng.randrange(known) if known else 0
                path = {
                    "checkpoint": "/checkpoint",
                    "inclusion": f"/api/v1/proof/inclusion?index={index}",
                    "bundle": f"/api/v1/bundle/{index}",
                    "tile": f"/tile/0/{index // 256:03d}.p/1",
                    "entries": f"/tile/entries/{index // 256:03d}.p/1",
                }[kind]
                try:
                    response = client.get(path)
                except httpx.HTTPError as exc:
                    self.count_failure(type(exc).__name__)
                    time.sleep(0.2)
                    continue
                if response.status_code == 200:
                    with self.tally.lock:
                        self.tally.served[kind] += 1
                    if kind == "checkpoint":
                        checkpoint = parse_checkpoint(open_note(response.content, [self.log_verifier]).text)
                        self.tally.saw(checkpoint.size, checkpoint.root)
                elif response.status_code != 404:  # 404: a partial tile that the tree has since outgrown
                    self.count_failure(f"{kind} {response.status_code}")

    def prober(self) -> None:
        """Merge delay: acknowledged -> in a published checkpoint with QUORUM cosignatures."""
        with httpx.Client(base_url=self.log.url, timeout=10) as client:
            while not self.stop_load.is_set():
                document = os.urandom(32)
                statement = Statement(
                    self.origin, ISSUE, self.issuer.verifier().vkey, int(time.time()), document=document
                )
                signed = sign_statement(statement, self.issuer)
                [index] = self.submit_until_acknowledged(client, [signed])
                acknowledged = time.monotonic()
                while time.monotonic() - acknowledged < 120:
                    with contextlib.suppress(httpx.HTTPError, ValueError):
                        note = parse_note(client.get("/checkpoint").content)
                        if parse_checkpoint(note.text).size > index and len(note.signatures) >= 1 + QUORUM:
                            with self.tally.lock:
                                self.tally.merge_delays.append(time.monotonic() - acknowledged)
                            break
                    time.sleep(0.02)
                self.stop_load.wait(2)

    def count_failure(self, what: str) -> None:
        with self.tally.lock:
            self.tally.failed[what] += 1

    def sample_memory(self) -> None:
        while not self.stop_load.is_set():
            for service in [self.log, *self.witnesses]:
                service.sample_memory()
            self.stop_load.wait(1)

    # --- faults ---------------------------------------------------------------------------------------------

    def chaos(self, until: float) -> list[str]:
        events, rng, round_ = [], random.Random(7), 0
        while time.monotonic() + self.kill_every < until:
            time.sleep(self.kill_every)
            round_ += 1
            if round_ % 2 == 1:
                self.log.kill()
                with self.tally.lock:
                    self.tally.epoch += 1
                if round_ == 1:
                    events.append(f"{time.monotonic():.0f} kill -9 log, {self.start_on_old_copy()}")
                self.log.start()
                events.append(f"{time.monotonic():.0f} kill -9 log, restarted")
            else:
                witness = rng.choice(self.witnesses)
                witness.kill()
                if self.log.kill_one_worker():
                    self.worker_kills += 1
                    events.append(f"{time.monotonic():.0f} kill -9 a signature worker of the log")
                time.sleep(2)
                witness.start()
                events.append(f"{time.monotonic():.0f} kill -9 {witness.name}, restarted after 2 s")
        return events

    def take_old_copy(self) -> None:
        """A consistent copy of the log's database as it is now (SQLite's online backup), for start_on_old_copy."""
        with sqlite3.connect(self.dir / "log" / "log.db") as source, sqlite3.connect(self.old_copy) as copy:
            source.backup(copy)

    def start_on_old_copy(self) -> str:
        """The operator's mistake: the database replaced by an older copy. The log must refuse to start on it."""
        data, aside = self.dir / "log", self.dir / "current-db"
        aside.mkdir(exist_ok=True)
        for path in data.glob("log.db*"):
            path.rename(aside / path.name)
        shutil.copy2(self.old_copy, data / "log.db")
        try:
            self.old_copy_refusal = self.log.start_expecting_refusal()
        finally:
            for path in data.glob("log.db*"):
                path.unlink()
            for path in aside.iterdir():
                path.rename(data / path.name)
        return f"started on an older copy of its database: {self.old_copy_refusal or 'NOT REFUSED'}"

    # --- the audit ------------------------------------------------------------------------------------------

    def published(self, client: httpx.Client) -> Checkpoint:
        """The log's published checkpoint, once it covers every acknowledged entry or after 30 s. An entry is
        acknowledged when durable, and published after the witnesses cosign: the last ones can lag the end of
        the load by a merge or a witness round. A lost entry is never covered, so the audit still finds it."""
        wanted, deadline = max(self.tally.acknowledged, default=-1) + 1, time.monotonic() + 30
        while True:
            final = parse_checkpoint(open_note(client.get("/checkpoint").content, [self.log_verifier]).text)
            if final.size >= wanted or time.monotonic() > deadline:
                return final
            time.sleep(0.1)

    def audit(self) -> dict[str, Any]:
        with httpx.Client(base_url=self.log.url, timeout=30) as client:
            final = self.published(client)
            for witness in self.witnesses:  # the witnesses' own view counts for forks too
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    digest = hashlib.sha256(self.origin.encode()).hexdigest()
                    seen = client.get(f"{witness.url}/{digest}/checkpoint")
                    if seen.status_code == 200:
                        cosigned = parse_checkpoint(open_note(seen.content, [self.log_verifier]).text)
                        self.tally.saw(cosigned.size, cosigned.root)
            lost = self.lost_entries(client, final.size, final.root)
            forks = []
            for size, roots in sorted(self.tally.roots.items()):
                if len(roots) > 1 or size > final.size:
                    forks.append(size)
                    continue
                root = next(iter(roots))
                try:
                    answer = client.get("/api/v1/proof/consistency", params={"old": size, "new": final.size})
                    hashes = [base64.b64decode(h) for h in answer.json()["proof"]]
                    verify_consistency(size, final.size, root, final.root, hashes)
                except Exception:  # no proof = a fork as far as a client can tell
                    forks.append(size)
        return {"final_size": final.size, "lost": lost, "forks": forks, "checkpoints_seen": len(self.tally.roots)}

    def lost_entries(self, client: httpx.Client, size: int, root: bytes) -> list[int]:
        """Acknowledged entries that are not in the final tree. Every leaf hash is read from the level-0 tiles and
        the tree is rebuilt: its root must be the signed one (so every leaf there has an inclusion proof), and each
        acknowledged index must hold its leaf. On top, the log's own inclusion proofs for a sample must verify."""
        leaves: list[bytes] = []
        for number in range(-(-size // TILE_WIDTH)):
            tile = tile_at(0, number, size)
            leaves += split_tile(tile, client.get("/" + tile.path).raise_for_status().content)
        acknowledged = sorted(self.tally.acknowledged.items())
        if append_leaves(0, [], leaves).root != root:
            return [index for index, _ in acknowledged]  # the tiles do not make the signed tree: prove nothing
        lost = [index for index, leaf in acknowledged if index >= size or leaves[index] != leaf]
        for index, leaf in random.sample(acknowledged, min(500, len(acknowledged))):
            try:
                proof = client.get("/api/v1/proof/inclusion", params={"index": index, "size": size})
                verify_inclusion(leaf, index, size, [base64.b64decode(h) for h in proof.json()["proof"]], root)
            except Exception:  # any failure to prove it means the entry is lost
                lost.append(index)
        return sorted(set(lost))

    # --- the run --------------------------------------------------------------------------------------------

    def leftover_processes(self, wait: float = 5.0) -> list[int]:
        """Child processes of any life of any server still running after the end (there must be none)."""
        seen = set().union(*(s.children_seen for s in [self.log, *self.witnesses]))
        deadline = time.monotonic() + wait
        while True:
            alive = [pid for pid in sorted(seen) if Path(f"/proc/{pid}").exists()]
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.2)

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        self.start_services()
        threads = [threading.Thread(target=self.submitter, args=(i,)) for i in range(self.submitters)]
        threads += [threading.Thread(target=self.reader, args=(i,)) for i in range(self.readers)]
        threads += [threading.Thread(target=self.prober), threading.Thread(target=self.sample_memory)]
        for thread in threads:
            thread.start()
        try:
            events = self.chaos(started + self.minutes * 60)
            self.stop_load.wait(max(0.0, started + self.minutes * 60 - time.monotonic()))
            self.stop_load.set()
            for thread in threads:
                thread.join(120)
            figures = self.audit()
        finally:
            self.stop_load.set()
            for service in [self.log, *self.witnesses]:
                service.stop()
        tally = self.tally
        delays = sorted(tally.merge_delays)
        return {
            "minutes": round((time.monotonic() - started) / 60, 2),
            "requests_served": sum(tally.served.values()),
            "served_by_kind": dict(tally.served),
            "failed_by_kind": dict(tally.failed),
            "entries_acknowledged": len(tally.acknowledged),
            "duplicates_answered": tally.duplicates,
            "acknowledged_per_log_life": [tally.acks_per_epoch[e] for e in range(tally.epoch + 1)],
            "entries_lost": len(figures["lost"]),
            "forks": len(figures["forks"]),
            "final_size": figures["final_size"],
            "checkpoints_seen": figures["checkpoints_seen"],
            "log_restarts": self.log.starts - 1,
            "witness_restarts": sum(w.starts - 1 for w in self.witnesses),
            "merge_delay_to_2_of_3_s": {
                "samples": len(delays),
                "p50": round(delays[len(delays) // 2], 3) if delays else None,
                "max": round(delays[-1], 3) if delays else None,
            },
            "peak_rss_mib": {s.name: round(s.peak_rss_kib / 1024, 1) for s in [self.log, *self.witnesses]},
            "peak_rss_log_workers_mib": round(self.log.peak_children_rss_kib / 1024, 1),
            "child_processes_seen": len(self.log.children_seen),
            "leftover_processes": len(self.leftover_processes()),
            "worker_kills": self.worker_kills,
            "old_copy_refusal": self.old_copy_refusal,
            "events": events,
        }


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@contextlib.contextmanager
def workdir(given: str | None) -> Iterator[Path]:
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=False)
        yield path
    else:
        with tempfile.TemporaryDirectory(prefix="tlog-soak-") as tmp:
            yield Path(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--kill-every", type=float, default=20.0, help="seconds between two kill -9")
    parser.add_argument("--submitters", type=int, default=2)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--dir", default=None, help="keep the data and logs here (a new directory)")
    args = parser.parse_args(argv)
    with workdir(args.dir) as path:
        result = Soak(path, args.minutes, args.kill_every, args.submitters, args.readers).run()
    print(json.dumps(result, indent=2))
    refused = result["old_copy_refusal"] or result["log_restarts"] == 0  # no log kill: no older copy was tried
    return 1 if result["entries_lost"] or result["forks"] or not refused else 0


if __name__ == "__main__":
    sys.exit(main())
