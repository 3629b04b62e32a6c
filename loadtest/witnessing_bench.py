"""Time witnessing adds to a checkpoint's publication: a log with three local witnesses.

    .venv/bin/python -m loadtest.witnessing_bench [--rounds 300]

For each round: submit one statement and wait for its acknowledgement (the entry
is durable and the log has signed a checkpoint containing it); then poll
`/checkpoint` until the published checkpoint reaches that size with all three
cosignatures. The difference is what witnessing adds. Prints p50/p99 and the same
with no witnesses configured, as the baseline. Talks only to 127.0.0.1; starts and
stops its own processes in a temporary folder. Prints figures, asserts nothing.
"""

import argparse
import base64
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from loadtest.localproc import free_port, log_identity
from loadtest.quantiles import percentile
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.keys import Ed25519Signer, parse_signer_key
from tlogcore.note import parse_note
from tlogcore.statement import ISSUE, ISSUER_ADD, Statement, sign_statement

REPO = Path(__file__).resolve().parent.parent
POLL = 0.001


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(url)


@contextlib.contextmanager
def started(args: list[str], url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-c", *args], cwd=REPO, stdout=out, stderr=out)
    try:
        wait_ready(url, process)
        yield process
    finally:
        process.terminate()
        process.wait(10)


def witness_vkey(out: Path) -> str:
    for line in out.read_text().splitlines():
        if line.startswith("vkey "):
            return line.split()[1]
    raise RuntimeError("witness printed no vkey")


def measure(url: str, data: Path, rounds: int, cosignatures: int) -> list[float]:
    registry = parse_signer_key((data / "registry.key").read_text().strip())
    issuer = Ed25519Signer("bench.example.gov.kh", b"\x07" * 32)
    added: list[float] = []
    with httpx.Client(base_url=url, timeout=10) as client:
        origin = client.get("/api/v1/log").json()["origin"]

        def submit(statement: bytes) -> int:
            response = client.post("/api/v1/entries", json={"statements": [base64.b64encode(statement).decode()]})
            response.raise_for_status()
            return int(response.json()["entries"][0]["index"])

        submit(
            sign_statement(
                Statement(
                    origin, ISSUER_ADD, registry.verifier().vkey, int(time.time()), issuer=issuer.verifier().vkey
                ),
                registry,
            )
        )
        for i in range(rounds):
            statement = Statement(
                origin, ISSUE, issuer.verifier().vkey, int(time.time()), document=i.to_bytes(32, "big")
            )
            index = submit(sign_statement(statement, issuer))
            acknowledged = time.perf_counter()
            while True:
                note = parse_note(client.get("/checkpoint").content)
                if parse_checkpoint(note.text).size > index and len(note.signatures) >= 1 + cosignatures:
                    added.append(time.perf_counter() - acknowledged)
                    break
                time.sleep(POLL)
    return added


def run(tmp: Path, rounds: int, witnesses: int) -> list[float]:
    data = tmp / f"log{witnesses}"
    ident = log_identity(data)
    origin, log_vkey = ident.origin, ident.log_vkey
    with contextlib.ExitStack() as stack:
        tables = []
        for i in range(witnesses):
            port = free_port()
            config = tmp / f"w{witnesses}-{i}.toml"
            config.write_text(f'name = "witness{i}.bench"\n\n[[log]]\norigin = "{origin}"\nvkey = "{log_vkey}"\n')
            out = tmp / f"w{witnesses}-{i}.out"
            stack.enter_context(
                started(
                    [
                        "from witness.cli import main; main()",
                        "serve",
                        "--data",
                        str(tmp / f"w{witnesses}-{i}"),
                        "--config",
                        str(config),
                        "--listen",
                        f"127.0.0.1:{port}",
                        "--no-access-log",
                        "--log-level",
                        "warning",
                    ],
                    f"http://127.0.0.1:{port}",
                    out,
                )
            )
            vkey = witness_vkey(out)
            tables.append(f'[[witness]]\nurl = "http://127.0.0.1:{port}"\nvkey = "{vkey}"\n')
        config = tmp / f"log{witnesses}.toml"
        config.write_text("".join(tables))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        stack.enter_context(
            started(
                [
                    "from logserver.cli import main; main()",
                    "serve",
                    "--data",
                    str(data),
                    "--config",
                    str(config),
                    "--listen",
                    f"127.0.0.1:{port}",
                ],
                url,
                tmp / f"log{witnesses}.out",
            )
        )
        return measure(url, data, rounds, witnesses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = run(Path(tmp), args.rounds, 0)
        three = run(Path(tmp), args.rounds, 3)
    print(f"acknowledged -> published, {args.rounds} rounds, polling every {POLL * 1000:.0f} ms")
    for label, values in (("no witnesses (baseline)", baseline), ("3 local witnesses, all cosigning", three)):
        p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
        print(f"  {label:<36} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")


if __name__ == "__main__":
    main()
