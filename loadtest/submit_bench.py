"""How fast does `tlog submit --csv` log documents, beside what the log server itself accepts in the same run?

    .venv/bin/python -m loadtest.submit_bench [--count 20000]

1. A fresh local log (SQLite, `tlog-server serve` as a process) with the benchmark's issuer registered.
2. Ceiling: the server's own rate. `count` statements signed beforehand on every core, posted in batches of 1000
   over 4 keep-alive connections, asking for answers without inclusion proofs as the tool does: entries
   acknowledged per second of wall time.
3. The tool, as an issuer runs it, as a process: `tlog submit --csv hashes.csv` of `count` new hashes, as run by
   default (a lookup per batch of 1000 documents, `POST /api/v1/documents:lookup`, which also catches revoked
   documents) and with `--no-lookup`; documents per second of wall time, the tool's CPU seconds beside it.
   `--profile` runs the default one under cProfile and prints its top functions (issue 20's profile).
4. Files hashed at disk speed: `sha256_file` over a 256 MiB file, beside `sha256sum` on the same file.
"""

import argparse
import asyncio
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from loadtest.log_bench import (
    ENTRIES,
    HTTP_BATCH,
    chunks,
    entries_body,
    issuer_add,
    issuer_key,
    make_pool,
    prepare_data,
    running_server,
)
from tlogcore.keys import format_signer_key

REPO = Path(__file__).resolve().parent.parent
CLIENTS = 4


async def post_all(url: str, bodies: Sequence[bytes]) -> None:
    queue = list(bodies)

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            body = queue.pop()
            response = await client.post(ENTRIES, content=body, headers={"content-type": "application/json"})
            response.raise_for_status()

    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(CLIENTS)))


def server_rate(url: str, count: int) -> float:
    pool = make_pool(count, int(time.time()) - 5)
    # asking for no inclusion proofs, as the tool does (LogClient.submit_receipt): the same answer it waits for
    bodies = [entries_body(chunk, inclusion_proofs=False) for chunk in chunks(pool, HTTP_BATCH)]
    started = time.monotonic()
    asyncio.run(post_all(url, bodies))
    return count / (time.monotonic() - started)


def tool_rate(
    url: str, tmp: Path, count: int, label: str, extra: Sequence[str], profile: Path | None = None
) -> tuple[float, float]:
    """Documents per second of `tlog submit --csv`, and the tool's CPU seconds."""
    csv = tmp / f"{label}.csv"
    rows = "".join(f"{os.urandom(32).hex()},doc-{label}-{i}\n" for i in range(count))
    csv.write_text("sha256,name\n" + rows)
    key = tmp / "issuer.key"
    if not key.exists():
        key.write_text(format_signer_key(issuer_key()) + "\n")
        key.chmod(0o600)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            *(["-m", "cProfile", "-o", str(profile)] if profile is not None else []),
            str(Path(sys.executable).parent / "tlog"),
            "submit",
            "--log",
            url,
            "--key",
            str(key),
            "--csv",
            str(csv),
            *extra,
        ],
        cwd=REPO,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return count / elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def hashing_rates(tmp: Path) -> tuple[float, float]:
    """The tool's file hashing (run in its own process: loadtest may not import tools) beside sha256sum."""
    big = tmp / "big.bin"
    with big.open("wb") as handle:
        for _ in range(256):
            handle.write(os.urandom(1 << 20))
    code = "import sys, time, pathlib; from tools.hashing import sha256_file; t = time.monotonic(); "
    code += "sha256_file(pathlib.Path(sys.argv[1])); "
    code += "print(time.monotonic() - t)"
    took = subprocess.run([sys.executable, "-c", code, str(big)], cwd=REPO, check=True, capture_output=True, text=True)
    ours = 256 / float(took.stdout)
    started = time.monotonic()
    subprocess.run(["sha256sum", str(big)], check=True, stdout=subprocess.DEVNULL)
    return ours, 256 / (time.monotonic() - started)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--profile", type=Path, default=None, help="write the default run's cProfile here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        data = tmp / "log"
        prepare_data(data)
        with running_server(data) as server:
            httpx.post(
                server.url + ENTRIES,
                content=entries_body([issuer_add(int(time.time()) - 10)]),
                headers={"content-type": "application/json"},
                timeout=30,
            ).raise_for_status()
            ceiling = server_rate(server.url, args.count)
            looked, looked_cpu = tool_rate(server.url, tmp, args.count, "lookup", [])
            fast, fast_cpu = tool_rate(server.url, tmp, args.count, "no-lookup", ["--no-lookup"])
            if args.profile is not None:
                tool_rate(server.url, tmp, args.count, "profiled", [], args.profile)
        ours, sha256sum = hashing_rates(tmp)
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    print("| what | rate | beside |")
    print("|---|---|---|")
    print(
        f"| log server, pre-signed statements ({args.count}, batches of {HTTP_BATCH}, {CLIENTS} connections) "
        f"| {ceiling:,.0f} entries/s | ceiling |"
    )
    print(
        f"| tlog submit --csv, a lookup per batch (default; {args.count} hashes) | {looked:,.0f} documents/s "
        f"| {looked / ceiling:.0%} of the server; tool CPU {looked_cpu:.1f} s |"
    )
    print(
        f"| tlog submit --csv --no-lookup ({args.count} hashes) | {fast:,.0f} documents/s "
        f"| {fast / ceiling:.0%} of the server; tool CPU {fast_cpu:.1f} s |"
    )
    print(
        f"| file hashing, tools.hashing.sha256_file (256 MiB) | {ours:,.0f} MiB/s | sha256sum {sha256sum:,.0f} MiB/s |"
    )
    if args.profile is not None:
        print(f"\nthe default run under cProfile ({args.profile}), top functions by own time:")
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
