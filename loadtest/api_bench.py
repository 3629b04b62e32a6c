"""The wire protocol's cost on the write path (logserver/api.py), next to a ceiling measured in the same run: the
same JSON built and read by hand, as app.py did before the protocol had one home.

    .venv/bin/python -m loadtest.api_bench

A batch of 1000 statements in, 1000 entries out, each with a 20-hash inclusion proof (a tree of about 10^6).
Prints figures; asserts nothing.
"""

import base64
import os
import time
from collections.abc import Callable

import orjson

from logserver import api
from tlogcore.encoding import b64encode

BATCH, PROOF = 1000, 20


def per_second(work: Callable[[], object], min_seconds: float = 1.0) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        work()
        done += 1
    return done / (time.perf_counter() - start)


def main() -> None:
    statements = [os.urandom(300) for _ in range(BATCH)]
    request = orjson.dumps({"statements": [base64.b64encode(s).decode() for s in statements]})
    hashes = [os.urandom(32) for _ in range(PROOF)]
    entries = [(i, os.urandom(32), False, hashes) for i in range(BATCH)]
    note = b"log.example\n1000000\n" + b"A" * 44 + b"\n\n\xe2\x80\x94 log.example xyz\n"

    def read_typed() -> object:
        return api.SubmitRequest.from_json(orjson.loads(request)).statements

    def read_by_hand() -> object:
        items = orjson.loads(request)["statements"]
        return [base64.b64decode(item, validate=True) for item in items]

    def write_typed() -> bytes:
        rows = tuple(api.SubmittedEntry(i, leaf, dup, tuple(proof)) for i, leaf, dup, proof in entries)
        return orjson.dumps(api.SubmitResponse(note, rows).to_json())

    def write_by_hand() -> bytes:
        rows = [
            {"index": i, "leaf_hash": leaf.hex(), "duplicate": dup, "inclusion_proof": [b64encode(h) for h in proof]}
            for i, leaf, dup, proof in entries
        ]
        return orjson.dumps({"checkpoint": note.decode(), "entries": rows})

    if orjson.loads(write_typed()) != orjson.loads(write_by_hand()):
        raise SystemExit("the typed response and the hand-built one differ: the comparison would be unfair")
    print(f"batches of {BATCH} statements; responses of {BATCH} entries with {PROOF}-hash proofs")
    for name, typed, by_hand in [
        ("read request", read_typed, read_by_hand),
        ("write response", write_typed, write_by_hand),
    ]:
        ours, ceiling = per_second(typed), per_second(by_hand)
        figures = f"{ours * BATCH:>12,.0f} entries/s   by hand {ceiling * BATCH:>12,.0f}/s"
        print(f"  {name:<16} {figures}   {ours / ceiling:5.2f} of ceiling")


if __name__ == "__main__":
    main()
