#!/usr/bin/env python3
"""The project's two commands, needing only Python 3.11 on the machine.

    python3 dev.py run     create .venv if needed, install, run a local log with a witness
    python3 dev.py test    create .venv if needed, install, run the whole test suite
    python3 dev.py bench   run the micro-benchmarks (figures in BENCHMARKS.md)

The virtual environment is rebuilt when pyproject.toml changes.
"""

import hashlib
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".installed-from"


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
BROWSER_PACKAGES = ["chromium", "fonts-khmeros"]  # the web verifier's tests: Debian's Chromium, a Khmer font


def ensure_browser() -> None:
    """Install Debian's Chromium and a Khmer font for the web verifier's tests; fail loudly if that fails."""
    if BROWSER.exists() and KHMER_FONT.exists():
        return
    print(f"installing {' '.join(BROWSER_PACKAGES)} for the web verifier tests...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", *BROWSER_PACKAGES], check=True, env=env)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"cannot install {BROWSER_PACKAGES} (needed by tests/test_web_*.py): {exc}") from exc
    if not (BROWSER.exists() and KHMER_FONT.exists()):
        raise SystemExit(f"{BROWSER} or {KHMER_FONT} is still missing after installing {BROWSER_PACKAGES}")


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "help"
    if command not in ("run", "test", "bench"):
        print(__doc__)
        return 2
    ensure_environment()
    os.chdir(ROOT)
    if command == "test":
        ensure_browser()
        result = subprocess.run([str(PYTHON), "-m", "pytest", *argv[2:]])
        if result.returncode == 5:
            print("no tests ran: that is a failure", file=sys.stderr)
            return 1
        return result.returncode
    if command == "bench":
        return subprocess.run([str(PYTHON), "-m", "loadtest.core_bench", *argv[2:]]).returncode
    return run_local_log(argv[2:])


def run_local_log(extra: list[str]) -> int:
    """A local log on 127.0.0.1:8080 with one witness on 127.0.0.1:7380, on SQLite under ./data, until Ctrl-C.

    Keys are generated on first run. The witness follows the log; the log asks it to cosign every checkpoint.
    """
    data = ROOT / "data"
    tool = VENV / "bin"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so the witness is stopped too
    identity = subprocess.run(
        [str(tool / "tlog-server"), "init", "--data", str(data / "log")], capture_output=True, text=True, check=True
    ).stdout
    fields = dict(line.split(":", 1) for line in identity.splitlines())
    origin, log_vkey = fields["origin"].strip(), fields["log key"].strip()
    witness_config = data / "witness.toml"
    witness_config.write_text(
        f'name = "witness.localhost"\nlisten = "127.0.0.1:7380"\n\n[[log]]\norigin = "{origin}"\nvkey = "{log_vkey}"\n'
    )
    witness = subprocess.Popen(
        [
            str(tool / "tlog-witness"),
            "serve",
            "--data",
            str(data / "witness"),
            "--config",
            str(witness_config),
            "--no-access-log",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        witness_vkey = ""
        for line in witness.stdout or []:
            print(f"witness {line.rstrip()}")
            if line.startswith("vkey "):
                witness_vkey = line.split()[1]
                break
        log_config = data / "log.toml"
        log_config.write_text(
            f'[[witness]]\nname = "witness.localhost"\nurl = "http://127.0.0.1:7380"\nvkey = "{witness_vkey}"\n'
        )
        print(f"trust policy for verifiers:\n  log {log_vkey}\n  witness W {witness_vkey}\n  quorum W")
        server = [
            str(tool / "tlog-server"),
            "serve",
            "--data",
            str(data / "log"),
            "--config",
            str(log_config),
            "--listen",
            "127.0.0.1:8080",
            *extra,
        ]
        return subprocess.run(server).returncode
    except KeyboardInterrupt:
        return 0
    finally:
        witness.terminate()
        witness.wait(10)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
