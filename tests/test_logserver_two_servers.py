"""Two servers started by mistake on one database: the log never forks, and the second says why it cannot sequence."""

import base64
import time
from pathlib import Path

import httpx
from log_harness import LogProcess, free_port, issue, log_verifier, post_statements, register_issuer, seed
from log_verifier import verified_checkpoint

from tlogcore import merkle
from tlogcore.keys import Ed25519Signer

ISSUER = Ed25519Signer("land.example.gov.kh", seed(31))


def test_second_server_refuses_to_sequence_and_takes_over_when_the_first_dies(tmp_path: Path) -> None:
    data = tmp_path / "log"
    first = LogProcess(data, free_port()).start()
    second = LogProcess(data, free_port())
    try:
        with httpx.Client(base_url=first.url, timeout=10) as one:
            register_issuer(one, first, ISSUER)
            origin = one.get("/api/v1/log").json()["origin"]
            second.start()
            with httpx.Client(base_url=second.url, timeout=10) as two:
                info = two.get("/api/v1/log").json()
                assert info["sequencing"] is False
                assert "another tlog-server process" in info["not_sequencing_reason"]
                refused = post_statements(two, [issue(origin, ISSUER, b"\x01" * 32)])
                assert refused.status_code == 503 and refused.json()["error"] == "not_sequencing"
                assert refused.headers["retry-after"]
                # Reads still work on the second, and agree with the first.
                assert post_statements(one, [issue(origin, ISSUER, b"\x02" * 32)]).status_code == 200
                log_key = log_verifier(two)
                seen = verified_checkpoint(two, log_key)
                assert seen == verified_checkpoint(one, log_key)
                first.kill()
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and not two.get("/api/v1/log").json()["sequencing"]:
                    time.sleep(0.05)
                accepted = post_statements(two, [issue(origin, ISSUER, b"\x03" * 32)])
                assert accepted.status_code == 200, accepted.text
                after = verified_checkpoint(two, log_key)
                assert after.size == seen.size + 1
                proof = two.get("/api/v1/proof/consistency", params={"old": seen.size, "new": after.size}).json()
                merkle.verify_consistency(
                    seen.size, after.size, seen.root, after.root, [base64.b64decode(h) for h in proof["proof"]]
                )
    finally:
        first.stop()
        second.stop()
