"""Guards on the architecture (DESIGN.md, "Packages and the imports allowed between them"), and the static checks."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORE = "tlogcore"
PROJECT = {CORE, "logserver", "witness", "monitor", "tools", "loadtest"}
# What clients (monitor, tools, loadtest) may import from the services: the clients and the log's wire protocol.
# And the verifier page's builder, which `tlog verifier-site` shares with the log's own /verify (issue 16).
# logserver.wirecodec is the wire protocol's codec, split from logserver.api (which imports it) to keep modules small.
CLIENTS = {"logserver.api", "logserver.wirecodec", "logserver.client", "logserver.verifierpage", "witness.client"}


def allowed(package: str, module_path: Path, target: str) -> bool:
    """Whether `module_path` in `package` may import module `target` (a project module)."""
    top = target.split(".")[0]
    if top == package:
        return True
    if top == CORE:
        return True
    if package == "logserver":
        if target.startswith("witness.headerdeadline"):  # both servers' slowloris deadline, written once
            return module_path.name == "cli.py"
        if target.startswith("witness.workerprocess"):  # both servers' socket-pair worker process, written once
            return module_path.name in ("workerpool.py", "indexerprocess.py", "statusshards.py")  # and its shards
        if target.startswith("witness.processes"):  # both servers' process supervision pieces, written once
            return module_path.name in ("cli.py", "workers.py", "indexerprocess.py", "statusshards.py")
        return target.startswith("witness.client") and module_path.name == "witnessing.py"
    if package == "tools" and target.startswith("witness.processes"):  # signing workers exit with `tlog`
        return module_path.name == "signing.py"
    if package == "loadtest" and top == "logserver":
        return True  # README "Layout": the benchmark driver measures storage and sequencer in-process
    if package == "loadtest" and top == "monitor":  # the monitor benchmark measures the audit's stages in-process
        return module_path.name in ("monitor_bench.py", "monitor_bounds.py")
    if package == "loadtest" and top == "witness" and module_path.name == "witness_bench.py":
        return True  # the HTTP stack's no-work bound, served by the witness's own app class and uvicorn settings
    if package in ("monitor", "tools", "loadtest"):
        return any(target == c or target.startswith(c + ".") for c in CLIENTS)
    return False


def imports_of(path: Path, package: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                parts = path.relative_to(REPO).with_suffix("").parts[: -node.level]
                base = ".".join(parts)
                found.append(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def source_files() -> list[tuple[str, Path]]:
    return [(pkg, path) for pkg in sorted(PROJECT) for path in sorted((REPO / pkg).rglob("*.py"))]


CORE_LIBRARIES = ("cryptography", "nacl")  # nacl (PyNaCl, libsodium): Ed25519 verification only (issue 20)


def test_every_import_edge_is_allowed() -> None:
    violations = []
    for package, path in source_files():
        for target in imports_of(path, package):
            top = target.split(".")[0]
            if package == CORE and top not in PROJECT:
                if top not in sys.stdlib_module_names and top not in CORE_LIBRARIES:
                    violations.append(
                        f"{path.relative_to(REPO)} imports {target}: core allows stdlib, {CORE_LIBRARIES}"
                    )
            elif top in PROJECT and not allowed(package, path, target):
                violations.append(f"{path.relative_to(REPO)} imports {target}")
    assert not violations, "forbidden import edges:\n" + "\n".join(violations)


def test_the_guard_itself_catches_a_forbidden_edge(tmp_path: Path) -> None:
    # The guard must be able to fail: a witness module importing the log server is refused.
    assert not allowed("witness", REPO / "witness" / "app.py", "logserver.storage")
    assert not allowed("logserver", REPO / "logserver" / "app.py", "witness.client")
    assert allowed("logserver", REPO / "logserver" / "witnessing.py", "witness.client")
    assert allowed("logserver", REPO / "logserver" / "cli.py", "witness.headerdeadline")
    assert not allowed("logserver", REPO / "logserver" / "app.py", "witness.headerdeadline")
    assert not allowed("logserver", REPO / "logserver" / "cli.py", "witness.storage")
    assert not allowed("monitor", REPO / "monitor" / "x.py", "logserver.storage")
    assert not allowed("loadtest", REPO / "loadtest" / "x.py", "witness.storage")
    assert allowed("tools", REPO / "tools" / "x.py", "logserver.api")
    assert not allowed("tools", REPO / "tools" / "x.py", "logserver.app")


def test_what_clients_may_import_depends_on_nothing_of_the_servers() -> None:
    """The modules clients import stand alone: the core, each other, and nothing else of the project (a client
    must never pull the server's storage or sequencer in through the protocol module)."""
    for name in CLIENTS:
        path = REPO / (name.replace(".", "/") + ".py")
        for target in imports_of(path, name.split(".")[0]):
            top = target.split(".")[0]
            if top in PROJECT and top != CORE:
                assert any(target == c or target.startswith(c + ".") for c in CLIENTS), f"{name} imports {target}"


# Modules that import uvicorn without starting a server: the header deadline both servers' cli.py give it.
UVICORN_PARTS = {Path("witness/headerdeadline.py")}


def test_only_cli_modules_start_servers() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for package, path in source_files()
        if path.name != "cli.py"
        and path.relative_to(REPO) not in UVICORN_PARTS
        and any(t.split(".")[0] == "uvicorn" for t in imports_of(path, package))
    ]
    assert not offenders


@pytest.mark.parametrize("tool", [["ruff", "check", "."], ["mypy"]], ids=["ruff", "mypy"])
def test_static_checks(tool: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", *tool], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
