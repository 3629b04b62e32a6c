#!/usr/bin/env python3
"""The project's commands, needing only Python 3.11 on the machine.

    python3 dev.py run           create .venv if needed, install, run a local log with a witness
                                 [--data DIR] [--host 127.0.0.1] [--port 8080] [--witness-port 7380]
                                 [--engine sqlite|postgresql]
    python3 dev.py demo          (with `run` going) register a demo issuer, issue a sample certificate, write its
                                 PDF, QR codes and printable label into ./data/demo/    [--log URL] [--data DIR]
    python3 dev.py test          create .venv if needed, install, run the whole test suite (pytest arguments pass)
    python3 dev.py screenshots   refresh the pictures in docs/screenshots/ (tests write theirs to build/screenshots/)
    python3 dev.py bench         run the whole benchmark set and print a summary (figures in BENCHMARKS.md)
                                 [--quick: a few minutes] [--only submit_bench,wrk_reads] [--list]
                                 (HTTP reads use wrk: apt-get install wrk)

The virtual environment is rebuilt when pyproject.toml changes.
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".installed-from"
TOOLS = VENV / "bin"


def ensure_environment() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("setting up .venv (first run, or pyproject.toml changed)...", flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


BROWSER = Path("/usr/bin/chromium")
KHMER_FONT = Path("/usr/share/fonts/truetype/khmeros/KhmerOS.ttf")
BROWSER_PACKAGES = ["chromium", "fonts-khmeros"]  # the web pages' tests: Debian's Chromium, a Khmer font
WRK = Path("/usr/bin/wrk")  # the benchmarks' HTTP load generator (Debian's wrk): the lookups harness is tested
PROMTOOL = TOOLS / "promtool"  # Prometheus's rule checker, for the alert rules' tests (`ensure_promtool`)
POSTGRES_ROOT = Path("/usr/lib/postgresql")
POSTGRES_PACKAGES = ["postgresql"]  # the PostgreSQL engine's tests start throwaway clusters (loadtest/pgcluster.py)


def postgres_installed() -> bool:
    return "PG_BIN" in os.environ or any(POSTGRES_ROOT.glob("*/bin/initdb"))


def apt_install(packages: list[str], why: str) -> None:
    """Install Debian packages the tests need; fail loudly (never skip) if that is not possible."""
    print(f"installing {' '.join(packages)} ({why})...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], check=True, env=env)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"cannot install {packages} ({why}): {exc}; install them and run again") from exc


def ensure_promtool() -> None:
    """promtool alone, taken from Debian's prometheus package into .venv/bin: installing the package would also
    enable a Prometheus server listening on every interface, which the tests do not need."""
    if PROMTOOL.exists():
        return
    print("fetching promtool (Debian's prometheus package, unpacked into .venv/bin)...", flush=True)
    with tempfile.TemporaryDirectory() as name:
        try:
            if subprocess.run(["apt-get", "download", "prometheus"], cwd=name, capture_output=True).returncode:
                subprocess.run(["apt-get", "update", "-q"], check=True)  # no package lists yet
                subprocess.run(["apt-get", "download", "prometheus"], cwd=name, check=True)
            package = next(Path(name).glob("prometheus_*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(package), str(Path(name) / "root")], check=True)
            shutil.copy2(Path(name) / "root" / "usr" / "bin" / "promtool", PROMTOOL)
        except (OSError, StopIteration, subprocess.CalledProcessError) as exc:
            raise SystemExit(f"cannot fetch promtool (apt-get download prometheus): {exc}; run again") from exc


def ensure_system_packages() -> None:
    """Chromium and a Khmer font for the pages' tests, wrk for the benchmark harness's, promtool for the alert
    rules', PostgreSQL's server for the scale-out engine's tests."""
    if not (BROWSER.exists() and KHMER_FONT.exists()):
        apt_install(BROWSER_PACKAGES, "for the web pages' tests")
        if not (BROWSER.exists() and KHMER_FONT.exists()):
            raise SystemExit(f"{BROWSER} or {KHMER_FONT} is still missing after installing {BROWSER_PACKAGES}")
    if not WRK.exists():
        apt_install(["wrk"], "for the benchmark harness's tests")
        if not WRK.exists():
            raise SystemExit(f"{WRK} is still missing after installing wrk")
    ensure_promtool()
    if not postgres_installed():
        apt_install(POSTGRES_PACKAGES, "for the PostgreSQL engine's tests")
        if not postgres_installed():
            raise SystemExit(f"no initdb under {POSTGRES_ROOT} after installing {POSTGRES_PACKAGES}")


# The tests that take pictures, and where the README's pictures live.
SCREENSHOT_TESTS = [
    "tests/test_web_verifier.py",
    "tests/test_web_printed_code.py",
    "tests/test_web_trust.py",
    "tests/test_label.py",
    "tests/test_homepage.py",
    "tests/test_monitor_html_report.py",
    "tests/test_dev_commands.py",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "help"
    if command not in ("run", "test", "bench", "demo", "screenshots"):
        print(__doc__)
        return 2
    ensure_environment()
    os.chdir(ROOT)
    if command == "test":
        ensure_system_packages()
        result = subprocess.run([str(PYTHON), "-m", "pytest", *argv[2:]])
        if result.returncode == 5:
            print("no tests ran: that is a failure", file=sys.stderr)
            return 1
        return result.returncode
    if command == "screenshots":
        ensure_system_packages()
        env = {**os.environ, "TLOG_SCREENSHOTS_DIR": str(SCREENSHOTS)}
        tests = [t for t in SCREENSHOT_TESTS if (ROOT / t).exists()]
        return subprocess.run([str(PYTHON), "-m", "pytest", "-q", *tests, *argv[2:]], env=env).returncode
    if command == "bench":
        return subprocess.run([str(PYTHON), "-m", "loadtest.bench_set", *argv[2:]]).returncode
    if command == "demo":  # in the virtual environment: it uses the project's own QR code module
        return subprocess.run([str(PYTHON), str(ROOT / "dev.py"), "demo-in-venv", *argv[2:]]).returncode
    return run_local_log(argv[2:])


def run_options(args: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python3 dev.py run", description=run_local_log.__doc__)
    parser.add_argument("--data", type=Path, default=ROOT / "data", help="keys and state (default ./data)")
    parser.add_argument("--host", default="127.0.0.1", help="the log's address (0.0.0.0: reachable by phones)")
    parser.add_argument("--port", type=int, default=8080, help="the log's port (default 8080)")
    parser.add_argument("--witness-port", type=int, default=7380, help="the witness's port (default 7380)")
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    return parser.parse_known_args(args)  # anything else goes to `tlog-server serve`


class Stop(Exception):
    """SIGTERM: stop the log and the witness the way Ctrl-C does."""


def run_local_log(args: list[str]) -> int:
    """A local log on 127.0.0.1:8080 with one witness on 127.0.0.1:7380, until Ctrl-C or SIGTERM.

    Keys are generated on first run (tlog-server init, tlog-witness init). The witness follows the log; the log asks
    it to cosign every checkpoint. With --engine postgresql the log runs on a throwaway PostgreSQL cluster, and its
    keys and state live in a temporary directory removed at the end (a fresh log every time).
    """
    options, extra = run_options(args)

    def stop(*_: object) -> None:
        raise Stop

    signal.signal(signal.SIGTERM, stop)
    try:
        with log_storage(options) as (data, storage_toml):
            return serve_log_and_witness(options, data, storage_toml, extra)
    except (KeyboardInterrupt, Stop):
        return 0


@contextmanager
def log_storage(options: argparse.Namespace) -> Iterator[tuple[Path, str]]:
    """The data directory and the log config's [storage] table: SQLite in --data, or a throwaway PostgreSQL."""
    if options.engine == "sqlite":
        yield options.data, ""
        return
    if not postgres_installed():
        apt_install(POSTGRES_PACKAGES, "for --engine postgresql")
    sys.path.insert(0, str(ROOT))
    from loadtest.pgcluster import start_cluster

    cluster = start_cluster()
    scratch = Path(tempfile.mkdtemp(prefix="tlog-run-pg-"))
    try:
        dsn = cluster.create_database("tlog")
        print(f"PostgreSQL: a throwaway cluster at {dsn}; keys and witness state in {scratch} (removed at the end)")
        yield scratch, f'[storage]\nengine = "postgresql"\npostgresql_dsn = "{dsn}"\n\n'
    finally:
        cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def tool_json(*args: str) -> dict[str, str]:
    result = subprocess.run([str(TOOLS / args[0]), *args[1:], "--json"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(result.stderr.strip() or f"{args[0]} {args[1]} failed")
    return dict(json.loads(result.stdout))


def serve_log_and_witness(options: argparse.Namespace, data: Path, storage_toml: str, extra: list[str]) -> int:
    data.mkdir(parents=True, exist_ok=True)
    witness_id = tool_json("tlog-witness", "init", "--data", str(data / "witness"), "--name", "witness.localhost")
    witness_url = f"http://127.0.0.1:{options.witness_port}"
    status_index = "[status_index]\nindex_interval_ms = 250\n"  # provable status on (docs/status-proofs.md)
    witness = f'[[witness]]\nurl = "{witness_url}"\nvkey = "{witness_id["vkey"]}"\n'
    (data / "log.toml").write_text(f"{storage_toml}{status_index}{witness}")
    log = tool_json("tlog-server", "init", "--data", str(data / "log"), "--config", str(data / "log.toml"))
    (data / "witness.toml").write_text(
        f'name = "witness.localhost"\nlisten = "127.0.0.1:{options.witness_port}"\n\n'
        f'[[log]]\norigin = "{log["origin"]}"\nvkey = "{log["log_vkey"]}"\n'
    )
    witness_args = ["serve", "--data", str(data / "witness"), "--config", str(data / "witness.toml")]
    witness_args.append("--no-access-log")
    witness = subprocess.Popen([str(TOOLS / "tlog-witness"), *witness_args], stdout=subprocess.DEVNULL)
    server = None
    try:
        wait_healthy(witness_url, witness)
        log_url = f"http://127.0.0.1:{options.port}"
        server = subprocess.Popen(
            [str(TOOLS / "tlog-server"), "serve", "--data", str(data / "log"), "--config", str(data / "log.toml")]
            + ["--listen", f"{options.host}:{options.port}", *extra]
        )
        wait_healthy(log_url, server)
        print_next_steps(log_url, log, witness_id["vkey"], options.port, data)
        return server.wait()
    finally:
        for process in (server, witness):  # SIGTERM, then wait: each shuts down cleanly (no leaked workers)
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(20)


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the process for {url} exited with status {process.returncode} (its message is above)")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer /healthz within {timeout:.0f} s")


def print_next_steps(log_url: str, log: dict[str, str], witness_vkey: str, port: int, data: Path) -> None:
    demo = "python3 dev.py demo" + ("" if port == 8080 else f" --log {log_url}")
    if data != ROOT / "data":
        demo += f" --data {data}"
    print(
        f"\nThe log {log['origin']} is running.\n"
        f"  home page:  {log_url}/\n"
        f"  verifier:   {log_url}/verify\n"
        f"  first document: in another terminal, {demo}\n"
        "    (registers a demo issuer, issues a sample certificate, writes its PDF, QR codes and label to\n"
        f"    {data / 'demo'})\n"
        f"trust policy for verifiers ({log_url}/api/v1/policy):\n"
        f"  log {log['log_vkey']}\n  witness W {witness_vkey}\n  quorum W\n"
        "Stop with Ctrl-C.\n",
        flush=True,
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["demo-in-venv"]:
        sys.path.insert(0, str(ROOT))
        from contrib.demo import run_demo

        sys.exit(run_demo(sys.argv[2:]))
    sys.exit(main(sys.argv))
