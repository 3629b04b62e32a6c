"""The vendored ML-DSA-44 bundle (logserver/web/vendor/, issue 22): the file is the one its README pins by sha256,
the README's tarball sums are the ones the rebuild script checks, every bundled package's licence is there, the
bundle evaluates no strings as code (the page's CSP forbids it), and the page, its service worker and the static
site export all carry it, pinned by its SHA-384 like the page's own scripts."""

import hashlib
import re
from pathlib import Path

from log_harness import REPO

from logserver import verifierpage
from tools.cmd_site import write_site

VENDOR = REPO / "logserver" / "web" / "vendor"
README = (VENDOR / "README.md").read_text(encoding="utf-8")
BUNDLE = (VENDOR / "mldsa44.js").read_bytes()
TRUST = verifierpage.Trust("log.example.org", "log.example.org+01234567+AQ==", (), "quorum none\n", "http://x.test")


def package_rows() -> list[list[str]]:
    rows = [line.strip("|").split("|") for line in README.splitlines() if line.startswith("| @noble/")]
    return [[cell.strip() for cell in row] for row in rows]


def test_the_bundle_is_the_file_its_readme_pins() -> None:
    [pinned] = re.findall(r"^\| mldsa44\.js \| `([0-9a-f]{64})` \|$", README, re.MULTILINE)
    assert hashlib.sha256(BUNDLE).hexdigest() == pinned
    assert f"{len(BUNDLE):,} bytes" in README  # the size it states is this file's


def test_the_readme_tarball_sums_are_the_ones_the_rebuild_checks() -> None:
    script = (VENDOR / "rebuild.sh").read_text(encoding="utf-8")
    checked = dict(re.findall(r"^([0-9a-f]{64})  (\S+\.tgz)$", script, re.MULTILINE))
    stated = re.findall(r"^\| (@?[\w/.-]+)(?: \(build tool only\))? \| ([\d.]+) \|.*`([0-9a-f]{64})` \|$", README,
                        re.MULTILINE)  # fmt: skip
    assert len(stated) == len(checked) == 5
    for package, version, digest in stated:
        tarball = package.lstrip("@").replace("/", "-") + f"-{version}.tgz"
        assert checked[digest] == tarball
        assert f"{package}@{version}" in script  # the exact version is the one packed


def test_every_bundled_package_has_its_licence_here() -> None:
    bundled = [row for row in package_rows() if row[3].startswith("yes")]
    assert {row[0] for row in bundled} == {"@noble/post-quantum", "@noble/hashes", "@noble/curves"}
    for package, _version, licence, _in_bundle, _digest in bundled:
        [file_name] = re.findall(r"`(LICENSE\.[\w-]+)`", licence)
        assert file_name == "LICENSE." + package.lstrip("@").replace("/", "-")
        text = (VENDOR / file_name).read_text(encoding="utf-8")
        assert "MIT License" in text and "Permission is hereby granted" in text and "Paul Miller" in text


def test_the_bundle_evaluates_no_strings_and_exposes_one_name() -> None:
    code = BUNDLE.decode("utf-8")
    for forbidden in (r"\beval\s*\(", r"\bFunction\s*\(", r"set(?:Timeout|Interval)\s*\(\s*['\"`]", r"import\s*\("):
        assert not re.search(forbidden, code), forbidden
    assert code.startswith("var tlogMlDsa44=(()=>{") and code.rstrip().endswith("})();")
    assert "noble-post-quantum - MIT License" in code  # the licence comments esbuild keeps


def test_the_page_service_worker_and_site_export_carry_it(tmp_path: Path) -> None:
    assert verifierpage.asset("mldsa44.js") == BUNDLE
    html = verifierpage.render_page(TRUST, verifierpage.FOLDER_LAYOUT).decode()
    pin = verifierpage.integrity(BUNDLE)
    assert f'data-mldsa44="./mldsa44.js" data-mldsa44-integrity="{pin}"' in html
    assert 'src="./mldsa44.js"' not in html  # loaded lazily by verify.js, not by the page
    assert '"mldsa44.js"' in verifierpage.asset(verifierpage.SERVICE_WORKER).decode()
    written = write_site(tmp_path / "site", TRUST)
    assert tmp_path / "site" / "mldsa44.js" in written
    assert (tmp_path / "site" / "mldsa44.js").read_bytes() == BUNDLE
