"""The witness's TOML configuration, parsed strictly (text in, values out; `witness.cli` reads the file).

    name = "witness.example.org"          # the witness's key name, in its cosignature lines
    listen = "127.0.0.1:7380"             # optional; `serve --listen` overrides it
    algorithms = ["ed25519", "ml-dsa-44"] # optional, default ["ed25519"]: the cosignatures it signs, in this order
    workers = 2                           # optional, default 2: processes that verify and cosign; 0: in the server
    processes = 1                         # optional, default 1: server processes sharing the port (SO_REUSEPORT)

    [[log]]                               # one table per log this witness cosigns
    origin = "log.example.gov.kh/documents"
    vkey = "log.example.gov.kh/documents+1d2f3a4b+AbC…="

The log's key name must equal its origin (c2sp.org/tlog-checkpoint: "the key
name SHOULD be the origin"; tlog-policy makes it a MUST, and so do we).

`algorithms` (tlog-cosignature v1.1.0): "ed25519" signs type 0x04 cosignatures, "ml-dsa-44" the post-quantum
type 0x06; both, beside each other, let today's verifiers and post-quantum policies rely on one witness.

`workers` (witness/cosigner.py): the log signature checks and the cosignatures run in this many processes beside
the server's own, so they use every core; the state and its durable compare-and-swap stay in the server.

`processes` (witness/processes.py): this many whole servers (HTTP, event loop, their own `workers` each) share the
listening port; the compare-and-swap is SQLite's, across processes, so the promise holds whichever one answers.
"""

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tlogcore.encoding import parse_decimal
from tlogcore.errors import MalformedError
from tlogcore.keys import Verifier, check_key_name
from tlogcore.vkeys import LOG_KEYS, parse_key_for

DEFAULT_NAME = "witness.localhost"
DEFAULT_LISTEN = "127.0.0.1:7380"
MAX_LOGS = 10_000
DEFAULT_WORKERS = 2  # the two cores of the reference machine (docs/performance.md, "The witness")
MAX_WORKERS = 64
DEFAULT_PROCESSES, MAX_PROCESSES = 1, 64
ED25519, ML_DSA_44 = "ed25519", "ml-dsa-44"
ALGORITHMS = (ED25519, ML_DSA_44)


@dataclass(frozen=True)
class LogConfig:
    origin: str
    verifier: Verifier


@dataclass(frozen=True)
class WitnessConfig:
    name: str
    listen: str
    logs: tuple[LogConfig, ...]
    algorithms: tuple[str, ...] = (ED25519,)
    workers: int = DEFAULT_WORKERS
    processes: int = DEFAULT_PROCESSES

    def trusted_keys(self) -> Mapping[str, Sequence[Verifier]]:
        """Origin → the log keys whose signature makes a checkpoint of that origin acceptable. A log that rotated
        its key (docs/thirty-years.md, "Log key rotation") has one [[log]] table per key, all with its origin."""
        keys: dict[str, tuple[Verifier, ...]] = {}
        for log in self.logs:
            keys[log.origin] = (*keys.get(log.origin, ()), log.verifier)
        return keys


def _string(table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if value is None:
        raise MalformedError(f"config: {where}: missing {key!r}")
    if not isinstance(value, str):
        raise MalformedError(f"config: {where}: {key!r} must be a string")
    return value


def _only_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise MalformedError(f"config: {where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _log(table: Any, number: int) -> LogConfig:
    where = f"[[log]] #{number}"
    if not isinstance(table, dict):
        raise MalformedError(f"config: {where} must be a table")
    _only_keys(table, {"origin", "vkey"}, where)
    origin = _string(table, "origin", where)
    try:
        verifier = parse_key_for(_string(table, "vkey", where), LOG_KEYS, "a log key")
    except MalformedError as exc:
        raise MalformedError(f"config: {where}: vkey: {exc}") from None
    if verifier.name != origin:
        raise MalformedError(f"config: {where}: the vkey's key name {verifier.name!r} must equal the origin {origin!r}")
    return LogConfig(origin, verifier)


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (an IPv6 host in brackets, `[::1]:7380`) → (host, port); port 1..65535 in canonical decimal."""
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or any(c.isspace() for c in host):
        raise MalformedError(f"listen address {text[:80]!r}: want HOST:PORT")
    port = parse_decimal(port_text, f"listen address {text[:80]!r}: port", 65535)
    if port == 0:
        raise MalformedError(f"listen address {text[:80]!r}: port must be 1..65535")
    return host, port


def parse_config(text: str) -> WitnessConfig:
    """Parse the TOML text; every problem is a MalformedError naming where it is."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MalformedError(f"config: not valid TOML: {exc}") from None
    except RecursionError:  # fuzzing: tomllib recurses once per nested [ or {
        raise MalformedError("config: not valid TOML: nested too deeply") from None
    _only_keys(document, {"name", "listen", "log", "algorithms", "workers", "processes"}, "top level")
    try:
        name = check_key_name(_string(document, "name", "top level", DEFAULT_NAME))
    except MalformedError as exc:
        raise MalformedError(f"config: name: {exc}") from None
    listen = _string(document, "listen", "top level", DEFAULT_LISTEN)
    parse_listen(listen)
    tables = document.get("log", [])
    if not isinstance(tables, list) or not tables:
        raise MalformedError("config: at least one [[log]] table (origin, vkey) is needed")
    if len(tables) > MAX_LOGS:
        raise MalformedError(f"config: more than {MAX_LOGS} logs")
    logs = tuple(_log(table, i + 1) for i, table in enumerate(tables))
    seen: set[str] = set()
    for log in logs:  # the same origin twice is a rotated log's second key; the same key twice is a mistake
        if log.verifier.vkey in seen:
            raise MalformedError(f"config: the log key {log.verifier.vkey[:80]!r} appears in two [[log]] tables")
        seen.add(log.verifier.vkey)
    algorithms = parse_algorithms(document.get("algorithms", [ED25519]))
    workers = parse_workers(document.get("workers", DEFAULT_WORKERS))
    return WitnessConfig(
        name, listen, logs, algorithms, workers, parse_processes(document.get("processes", DEFAULT_PROCESSES))
    )


def parse_workers(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_WORKERS:
        raise MalformedError(f"config: workers must be a whole number from 0 to {MAX_WORKERS} (0: sign in the server)")
    return value


def parse_processes(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_PROCESSES:
        raise MalformedError(
            f"config: processes must be a whole number from 1 to {MAX_PROCESSES} (servers on one port)"
        )
    return value


def parse_algorithms(value: Any) -> tuple[str, ...]:
    """The `algorithms` list: one or both of "ed25519" and "ml-dsa-44", each once."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise MalformedError(f'config: algorithms must be a non-empty list of strings, e.g. ["{ED25519}"]')
    for algorithm in value:
        if algorithm not in ALGORITHMS:
            raise MalformedError(f"config: algorithms: unknown {algorithm[:40]!r} (known: {', '.join(ALGORITHMS)})")
    if len(set(value)) != len(value):
        raise MalformedError("config: algorithms: an algorithm is listed twice")
    return tuple(value)
