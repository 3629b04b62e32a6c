"""tests/vectors holds exact copies of the shared vectors: checked against the sha256 values recorded in its README,
and against the shared set itself when a checkout sits beside it (../shared/vectors)."""

import hashlib
import re
from pathlib import Path

from conftest import REPO, VECTORS

SHARED = REPO.parent / "shared" / "vectors"
ROW = re.compile(r"^\| `(?P<copy>[^`]+)` \| `(?P<source>[^`]+)` \| `(?P<sha256>[0-9a-f]{64})` \|$", re.MULTILINE)
MADE_HERE = re.compile(r"^\| `(?P<folder>[^`]+/)` \| made here by `(?P<generator>[^`]+)` \|$", re.MULTILINE)


def recorded() -> list[tuple[str, str, str]]:
    text = (VECTORS / "README.md").read_text(encoding="utf-8")
    return [(m["copy"], m["source"], m["sha256"]) for m in ROW.finditer(text)]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_copy_matches_its_recorded_sha256() -> None:
    rows = recorded()
    assert len(rows) >= 13, "the provenance table in tests/vectors/README.md lost rows"
    wrong = [copy for copy, _, digest in rows if not (VECTORS / copy).is_file() or sha256(VECTORS / copy) != digest]
    assert wrong == [], f"copies that differ from the sha256 recorded in tests/vectors/README.md: {wrong}"


def made_here() -> dict[str, str]:
    """The project's own vector folders (not copies), each with the script that generates it."""
    text = (VECTORS / "README.md").read_text(encoding="utf-8")
    return {m["folder"]: m["generator"] for m in MADE_HERE.finditer(text)}


def test_every_file_in_the_folder_has_a_provenance_row() -> None:
    listed = {copy for copy, _, _ in recorded()} | {"README.md"}
    own = made_here()
    listed |= {
        Path(gen).relative_to("tests/vectors").as_posix() for gen in own.values() if gen.startswith("tests/vectors/")
    }
    present = {
        p.relative_to(VECTORS).as_posix() for p in VECTORS.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    }
    unexplained = {path for path in present - listed if not any(path.startswith(folder) for folder in own)}
    assert unexplained == set(), "files in tests/vectors with no row (copy or made-here folder) in its README"
    missing_generators = [gen for gen in own.values() if not (REPO / gen).is_file()]
    assert missing_generators == [], f"made-here vector folders whose generator script is missing: {missing_generators}"


def test_copies_are_identical_to_the_shared_set_when_it_is_beside_the_checkout() -> None:
    """Without ../shared the recorded digests (checked above) are the whole check; this says so rather than skip."""
    if not SHARED.is_dir():
        print(f"{SHARED} is absent: only the recorded sha256 values were checked")
        assert not SHARED.exists()
        return
    drifted = [copy for copy, source, _ in recorded() if sha256(SHARED / source) != sha256(VECTORS / copy)]
    assert drifted == [], f"copies that no longer match ../shared/vectors (refresh them and the table): {drifted}"
