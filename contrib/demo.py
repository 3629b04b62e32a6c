"""`python3 dev.py demo`: a first document in a minute, against the log `python3 dev.py run` started.

Registers a demo issuer (its key in DATA/demo/issuer.key, registered with the log's registry key in DATA/log),
writes a sample certificate as a PDF, logs it with the `tlog` tool (which waits for a checkpoint that meets the
log's own published trust policy), and writes into DATA/demo/:

    certificate-N.pdf                        the sample certificate, with its fields printed on it
    certificate-N.pdf.qr.png / .svg          a link to the log's verifier page (online form): scan it with a phone
    certificate-N.pdf.label.pdf / .svg       a printable label with that code (tools/label.py)
    certificate-N.pdf.tlog-proof             the proof bundle (c2sp.org/tlog-proof), for `tlog verify`
    certificate-N.fields.json                the same certificate as paper fields (docs/printed-code.md)
    certificate-N.fields.json.qr.png / ...   its code: the fields and the whole proof (offline form), and a label
    trust-policy.txt                         the log's trust policy, for `tlog verify --policy`

Each run issues a new certificate. For a phone on the same network, run the log on the machine's address
(`python3 dev.py run --host 0.0.0.0`) and give `--public-url http://<machine address>:8080` here.
"""

import argparse
import datetime
import json
import subprocess
import sys
from pathlib import Path

import httpx

from tools import qr as qrcodes

ROOT = Path(__file__).resolve().parent.parent
TLOG = Path(sys.executable).parent / "tlog"
ISSUER_NAME = "demo-ministry.localhost"
ISSUER_LABEL = "Demo Ministry of Education (ក្រសួងសាកល្បង)"


class DemoError(Exception):
    """A step of the demo failed; the message says which and what to do."""


def tlog(*args: str) -> str:
    result = subprocess.run([str(TLOG), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DemoError(f"tlog {args[0]} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def pdf_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(lines: list[str]) -> bytes:
    """A one-page PDF 1.4 (ISO 32000-1) of ASCII text lines in Helvetica: enough for a sample certificate."""
    stream = "BT /F1 14 Tf 72 760 Td 22 TL " + " ".join(f"({pdf_text(line)}) '" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >>"
        " /Contents 5 0 R >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("ascii")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode("ascii")
    out += b"".join(f"{offset:010d} 00000 n \n".encode("ascii") for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode("ascii")
    return bytes(out)


def issuer_key(log_url: str, data: Path, out: Path) -> Path:
    """The demo issuer's key, made once and registered with the log if it is not yet."""
    key = out / "issuer.key"
    made = key.exists()
    vkey = tlog("vkey", "--key", str(key)) if made else tlog("keygen", "--name", ISSUER_NAME, "--out", str(key))
    vkey = vkey.strip()
    issuers = httpx.get(f"{log_url}/api/v1/issuers", timeout=10).json()["issuers"]
    if not any(k["vkey"] == vkey and k["active"] for i in issuers for k in i["keys"]):
        registry = data / "log" / "registry.key"
        if not registry.exists():
            raise DemoError(f"{registry} is missing: give --data, the directory `python3 dev.py run` uses")
        registry_args = ["--log", log_url, "--registry-key", str(registry)]
        tlog("issuer", "add", *registry_args, "--issuer", vkey, "--label", ISSUER_LABEL)
        print(f"registered the demo issuer {ISSUER_NAME} ({vkey})")
    return key


def certificate(out: Path) -> tuple[Path, str, list[tuple[str, str]]]:
    number = 1 + sum(1 for p in out.glob("certificate-*.pdf") if p.stem.removeprefix("certificate-").isdigit())
    today = datetime.date.today().isoformat()
    ref = f"DEMO-{today}-{number}"
    fields = [
        ("Name", "Sok Dara"),
        ("Certificate", "Completion of the transparency log tutorial"),
        ("Number", ref),
        ("Date", today),
        ("Issued by", "Demo Ministry of Education"),
    ]
    lines = ["SAMPLE CERTIFICATE - NOT A REAL DOCUMENT", "", *(f"{name}: {value}" for name, value in fields)]
    lines += ["", "Scan the QR code on its label to check it against the public log."]
    path = out / f"certificate-{number}.pdf"
    path.write_bytes(make_pdf(lines))
    return path, ref, fields


def submit(log_url: str, key: Path, policy: Path, public_url: str, *options: str) -> None:
    """`tlog submit` with a label, waiting for a checkpoint that meets the log's own policy."""
    tlog("submit", "--log", log_url, "--key", str(key), "--policy", str(policy), "--public-url", public_url, *options)


def link_of(code_png: Path) -> str:
    return qrcodes.decode_image(code_png.read_bytes()).decode("ascii")


def run(log_url: str, data: Path, public_url: str) -> tuple[Path, Path]:
    out = data / "demo"
    out.mkdir(parents=True, exist_ok=True)
    key = issuer_key(log_url, data, out)
    policy = out / "trust-policy.txt"
    policy.write_text(httpx.get(f"{log_url}/api/v1/policy", timeout=10).text)
    pdf, ref, fields = certificate(out)
    submit(log_url, key, policy, public_url, "--ref", ref, "--qr", "online", "--label", str(pdf))
    paper = pdf.with_name(pdf.stem + ".fields.json")
    khmer = [("ឈ្មោះ", "សុខ ដារា")]  # printed in Khmer and English, as on a real certificate
    paper.write_text(json.dumps({"fields": dict(khmer + fields), "ref": ref}, ensure_ascii=False), encoding="utf-8")
    submit(log_url, key, policy, public_url, "--fields", "--qr", "offline", "--label", str(paper))
    print(f"issued {pdf.name} (a file) and {paper.name} (paper fields) in {log_url}; files in {out}:")
    for path in sorted(out.glob(f"{pdf.stem}.*")):
        print(f"  {path.name}")
    print(f"scan or open (online form): {link_of(Path(f'{pdf}.qr.png'))}")
    print(f"scan or open (paper, offline form): {link_of(Path(f'{paper}.qr.png'))}")
    print(f"check the file: {TLOG} verify {pdf} --policy {policy}")
    return pdf, paper


def run_demo(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 dev.py demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", default="http://127.0.0.1:8080", help="the running log (default: dev.py run's)")
    parser.add_argument("--data", type=Path, default=ROOT / "data", help="dev.py run's --data (default ./data)")
    parser.add_argument("--public-url", default=None, help="the log's address as a phone sees it (default --log)")
    options = parser.parse_args(argv)
    try:
        run(options.log.rstrip("/"), options.data, (options.public_url or options.log).rstrip("/"))
    except (DemoError, OSError, httpx.HTTPError) as exc:
        print(f"demo: {exc} (is `python3 dev.py run` going?)", file=sys.stderr)
        return 1
    return 0
