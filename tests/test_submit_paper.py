"""`tlog submit --fields` for paper documents (JSON per document, CSV field: columns) and `--label`, against a
real log with three witnesses: the QR code read back by zxing-cpp is a link carrying the fields and the salt;
the log holds only their hash; a re-run finds the same hash (the salt is derived from the issuer key)."""

import json
from pathlib import Path

import httpx
import pypdfium2
from qr_scan import scanned_text
from tools_stack import register_issuer, tlog, witnessed_log

from tlogcore.bundle import parse_tlog_proof, verify_bundle
from tlogcore.policy import parse_policy
from tlogcore.qrlink import decode_payload, split_link, to_bundle
from tlogcore.statement import parse_statement

STUDENTS = (
    "name,ref,field:ឈ្មោះ,field:Name,field:Degree,field:Date\n"
    "sok-dara,Diploma 2026/17,សុខ ដារា,Sok Dara,Bachelor of Law,2026-07-01\n"
    "chan-sophea,Diploma 2026/18,ចាន់ សុភា,Chan Sophea,Bachelor of Arts,2026-07-01\n"
)


def test_paper_documents_from_csv_and_json_with_labels(tmp_path: Path) -> None:
    with witnessed_log(tmp_path) as stack:
        key = tmp_path / "moeys.key"
        register_issuer(stack, key)
        policy_path = tmp_path / "trust.policy"
        policy_path.write_text(stack.policy_text)
        policy = parse_policy(stack.policy_text)
        (tmp_path / "students.csv").write_text(STUDENTS, encoding="utf-8")
        papers = tmp_path / "papers"
        papers.mkdir()
        fields = {"fields": {"Name": "Keo Vanna", "Certificate": "Grade 12", "Date": "2026-08-15"}, "ref": "BacII 9"}
        (papers / "keo.json").write_text(json.dumps(fields, ensure_ascii=False), encoding="utf-8")
        out = tmp_path / "out"
        args = ["submit", "--log", stack.url, "--key", str(key), "--policy", str(policy_path), "--fields"]
        args += ["--out", str(out), "--label", "--csv", str(tmp_path / "students.csv"), str(papers)]
        done = tlog(*args)
        assert done.exit_code == 0, done.output
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        assert len(manifest["documents"]) == 3
        for row in manifest["documents"]:
            link = scanned_text(Path(row["qr_png"]))
            assert link == row["link"]
            payload = decode_payload(split_link(link)[1])
            assert payload.paper is not None and payload.offline is not None
            assert payload.document_hash.hex() == row["sha256"]
            bundle = to_bundle(payload.offline, policy)
            verified = verify_bundle(bundle, policy, document=payload.paper.document)
            logged = parse_statement(parse_tlog_proof(Path(row["bundle"]).read_bytes()).extra or b"")
            assert logged.document == verified.statement.document  # the log holds only the hash
            for _, value in payload.paper.fields:
                assert value.encode() not in (Path(row["bundle"]).read_bytes())
            pdf = pypdfium2.PdfDocument(Path(row["label_pdf"]).read_bytes())
            image = pdf[0].render(scale=300 / 72).to_pil().convert("L")
            pdf.close()
            assert scanned_text(image) == link
        checked = tlog(
            "verify", str(policy_path), "--policy", str(policy_path), "--qr-text", manifest["documents"][0]["link"]
        )
        assert checked.exit_code == 6 and "paper document" in checked.output, checked.output  # not "tampered"
        sok = next(r for r in manifest["documents"] if r["input"] == "sok-dara")
        sok_fields = decode_payload(split_link(sok["link"])[1]).paper
        assert sok_fields is not None and sok_fields.fields[0] == ("ឈ្មោះ", "សុខ ដារា")
        size = int(httpx.get(stack.url + "/api/v1/log").json()["size"])
        again = tlog(*[a if a != str(out) else str(tmp_path / "out2") for a in args], "--lookup")
        assert again.exit_code == 0, again.output
        assert int(httpx.get(stack.url + "/api/v1/log").json()["size"]) == size  # same salts, same hashes
        rerun = json.loads((tmp_path / "out2" / "manifest.json").read_text(encoding="utf-8"))
        assert sorted(r["sha256"] for r in rerun["documents"]) == sorted(r["sha256"] for r in manifest["documents"])


def test_fields_input_errors_are_one_line(tmp_path: Path) -> None:
    key = tmp_path / "k.key"
    tlog("keygen", "--name", "moeys.gov.kh", "--out", str(key))
    bad = tmp_path / "bad.json"
    bad.write_text('{"Name": ["not", "a", "string"]}')
    result = tlog("submit", "--log", "http://127.0.0.1:9", "--key", str(key), "--fields", str(bad))
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and str(bad) in result.output
    plain = tmp_path / "hashes.csv"
    plain.write_text("field:Name\nSok\n")
    result = tlog("submit", "--log", "http://127.0.0.1:9", "--key", str(key), "--csv", str(plain))
    assert result.exit_code != 0 and "--fields" in result.output
