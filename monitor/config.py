"""The monitor's TOML configuration, parsed strictly: a parsed TOML document in, values out.

`monitor.cli` reads the files; this module only interprets them. Relative paths
are resolved against the config file's directory. Every option is shown in
`monitor.example.toml`. Trust in each log is a C2SP tlog-policy
(spec/FORMATS.md §h), given as a file, inline, or built from `vkey`,
`[[log.witness]]` tables and a `quorum` count.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.modes import SIGNATURES, VERIFY_MODES
from tlogcore.errors import MalformedError, TlogError
from tlogcore.freshness import MAX_AGE_SECONDS
from tlogcore.policy import Policy, parse_policy
from tlogcore.statement import parse_statement_key

SINK_TYPES = ("stdout", "file", "webhook", "command")


@dataclass(frozen=True)
class LogConfig:
    url: str
    origin: str
    policy: Policy
    witness_urls: Mapping[str, str]  # policy witness name -> URL, for the split-view check
    registry_vkeys: tuple[str, ...] | None  # None: learned from the log on first contact, then pinned
    tiles_url: str | None = None  # a static mirror of the log's tiles (mirror.py); None: from the log itself
    tiles_dir: Path | None = None  # a local copy of the log's tiles directory, read as files


@dataclass(frozen=True)
class WatchRule:
    """`registry`: every issuer-add and issuer-retire. Otherwise the statements of the keys listed
    (by vkey, or by key name: any key of that name) whose document is not expected."""

    name: str
    registry: bool = False
    issuer_keys: frozenset[str] = frozenset()
    issuer_names: frozenset[str] = frozenset()
    expected: Path | None = None  # a file of hashes, or a directory of such files
    expected_command: tuple[str, ...] | None = None
    revocations: bool = False  # also alert on every revocation (by these keys; for `registry`, by anyone)
    logs: frozenset[str] | None = None  # origins; None: every log

    def watches_key(self, vkey: str) -> bool:
        return vkey in self.issuer_keys or vkey.split("+", 1)[0] in self.issuer_names

    def applies_to(self, origin: str) -> bool:
        return self.logs is None or origin in self.logs


@dataclass(frozen=True)
class SinkConfig:
    type: str
    name: str
    path: Path | None = None  # file
    url: str | None = None  # webhook
    command: tuple[str, ...] = ()  # command
    headers: tuple[tuple[str, str], ...] = ()  # webhook
    retries: int = 5  # webhook: attempts after the first
    timeout: float = 10.0  # seconds per webhook request or command run


@dataclass(frozen=True)
class MonitorConfig:
    state: Path
    logs: tuple[LogConfig, ...]
    watch: tuple[WatchRule, ...] = ()
    sinks: tuple[SinkConfig, ...] = ()
    poll_interval: float = 10.0
    stale_after: float = 3600.0  # 0: never
    unreachable_after: float = 300.0  # 0: never
    # the newest checkpoint not vouched for by the policy's quorum for this long: verifiers online stop calling a
    # status proven (tlogcore/freshness.py); 0: never
    unvouched_after: float = float(MAX_AGE_SECONDS)
    verify: str = SIGNATURES
    workers: int = 1
    chunk_tiles: int = 16
    max_concurrent_requests: int = 8
    timeout: float = 30.0


_TOP: dict[str, type] = {
    "state": str,
    "poll_interval_seconds": float,
    "stale_after_seconds": float,
    "unreachable_after_seconds": float,
    "unvouched_after_seconds": float,
    "verify": str,
    "workers": int,
    "chunk_tiles": int,
    "max_concurrent_requests": int,
    "timeout_seconds": float,
    "log": list,
    "watch": list,
    "sink": list,
}


def _typed(value: Any, want: type, where: str) -> Any:
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > 2**1023:  # fuzzing: float() of a TOML integer this large raises OverflowError
            raise MalformedError(f"{where} must be a finite number")
        value = float(value)
    if (isinstance(value, bool) and want is not bool) or not isinstance(value, want):
        raise MalformedError(f"{where} must be a {want.__name__}")
    if isinstance(value, float) and not math.isfinite(value):  # fuzzing: TOML has nan and inf; nan <= 0 is false
        raise MalformedError(f"{where} must be a finite number")
    return value


def _table(value: Any, where: str, allowed: Mapping[str, type], required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedError(f"{where} must be a table")
    for key in value:
        if key not in allowed:
            raise MalformedError(f"{where}: unknown option {key!r}")
    for key in required:
        if key not in value:
            raise MalformedError(f"{where}: {key!r} is required")
    return {key: _typed(v, allowed[key], f"{where}.{key}") for key, v in value.items()}


def _strings(value: list[Any], where: str) -> tuple[str, ...]:
    if not all(isinstance(v, str) and v for v in value):
        raise MalformedError(f"{where} must be a list of non-empty strings")
    return tuple(value)


def _url(text: str, where: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise MalformedError(f"{where}: {text[:60]!r} is not an http(s) URL")
    return text.rstrip("/")


def config_from_toml(document: Mapping[str, Any], base: Path, read_file: Callable[[Path], str]) -> MonitorConfig:
    """Build the config; `read_file` reads a policy file (the CLI's job), `base` resolves relative paths."""
    top = _table(dict(document), "config", _TOP, ("state", "log"))
    if not top["log"]:
        raise MalformedError("config: at least one [[log]] is required")
    logs = tuple(_log(i, t, base, read_file) for i, t in enumerate(top["log"]))
    origins = [log.origin for log in logs]
    if len(set(origins)) != len(origins):
        raise MalformedError("config: two [[log]] tables for the same origin")
    watch = tuple(_watch(i, t, base) for i, t in enumerate(top.get("watch", [])))
    names = [rule.name for rule in watch]
    if len(set(names)) != len(names):
        raise MalformedError("config: two [[watch]] rules have the same name")
    sinks = tuple(_sink(i, t, base) for i, t in enumerate(top.get("sink", [])))
    if len({s.name for s in sinks}) != len(sinks):
        raise MalformedError("config: two [[sink]] tables have the same name")
    verify = top.get("verify", SIGNATURES)
    if verify not in VERIFY_MODES:
        raise MalformedError(f"config: verify must be one of {', '.join(VERIFY_MODES)}")
    positive = ("poll_interval_seconds", "workers", "chunk_tiles", "max_concurrent_requests", "timeout_seconds")
    for name in positive:
        if top.get(name, 1) <= 0:
            raise MalformedError(f"config: {name} must be positive")
    for name in ("stale_after_seconds", "unreachable_after_seconds", "unvouched_after_seconds"):
        if top.get(name, 0) < 0:
            raise MalformedError(f"config: {name} must be 0 (never) or positive")
    return MonitorConfig(
        state=base / top["state"],
        logs=logs,
        watch=watch,
        sinks=sinks or (SinkConfig("stdout", "stdout"),),
        poll_interval=top.get("poll_interval_seconds", 10.0),
        stale_after=top.get("stale_after_seconds", 3600.0),
        unreachable_after=top.get("unreachable_after_seconds", 300.0),
        unvouched_after=top.get("unvouched_after_seconds", float(MAX_AGE_SECONDS)),
        verify=verify,
        workers=top.get("workers", 1),
        chunk_tiles=top.get("chunk_tiles", 16),
        max_concurrent_requests=top.get("max_concurrent_requests", 8),
        timeout=top.get("timeout_seconds", 30.0),
    )


_LOG: dict[str, type] = {
    "url": str,
    "origin": str,
    "policy": str,
    "policy_file": str,
    "vkey": str,
    "quorum": int,
    "witness": list,
    "witness_urls": dict,
    "registry_vkeys": list,
    "tiles_url": str,
    "tiles_dir": str,
}


def _log(position: int, value: Any, base: Path, read_file: Callable[[Path], str]) -> LogConfig:
    where = f"[[log]] #{position + 1}"
    table = _table(value, where, _LOG, ("url",))
    sources = [k for k in ("policy", "policy_file", "vkey") if k in table]
    if len(sources) != 1:
        raise MalformedError(f"{where}: give exactly one of policy, policy_file, vkey")
    if "vkey" not in table and ("witness" in table or "quorum" in table):
        raise MalformedError(f"{where}: [[log.witness]] and quorum go with vkey; a policy names its own witnesses")
    try:
        if "policy_file" in table:
            path = base / table["policy_file"]
            try:
                text = read_file(path)
            except OSError as exc:
                raise MalformedError(f"{where}: cannot read policy file {path}: {exc.strerror}") from None
        elif "policy" in table:
            text = table["policy"]
        else:
            text = _policy_text(table, where)
        policy = parse_policy(text)
    except TlogError as exc:
        raise MalformedError(f"{where}: {exc}") from None
    origin = table.get("origin")
    if origin is None:
        origins = {log.name for log in policy.logs}  # a rotated log is listed once per key (docs/thirty-years.md)
        if len(origins) != 1:
            raise MalformedError(f"{where}: the policy lists {len(origins)} logs; say which with origin = ...")
        origin = policy.logs[0].name
    else:
        try:
            policy.log_for(origin)
        except TlogError:
            raise MalformedError(f"{where}: the policy has no log key for origin {origin!r}") from None
    urls = policy_witness_urls(text)
    for name, url in table.get("witness_urls", {}).items():
        if name not in policy.witnesses:
            raise MalformedError(f"{where}: witness_urls names {name!r}, which the policy does not list")
        urls[name] = _url(_typed(url, str, f"{where}.witness_urls.{name}"), where)
    registry = table.get("registry_vkeys")
    if registry is not None:
        registry = _strings(registry, f"{where}.registry_vkeys")
        try:
            for vkey in registry:
                parse_statement_key(vkey, "registry key")
        except TlogError as exc:
            raise MalformedError(f"{where}: {exc}") from None
    if "tiles_url" in table and "tiles_dir" in table:
        raise MalformedError(f"{where}: give tiles_url or tiles_dir (where the log's tiles are mirrored), not both")
    tiles_url = _url(table["tiles_url"], f"{where}.tiles_url") if "tiles_url" in table else None
    tiles_dir = base / table["tiles_dir"] if "tiles_dir" in table else None
    return LogConfig(_url(table["url"], where), origin, policy, urls, registry, tiles_url, tiles_dir)


def _policy_text(table: dict[str, Any], where: str) -> str:
    """`vkey` + `[[log.witness]]` (name, vkey, url) + `quorum` (k of them, 0 = none), as tlog-policy text."""
    lines = [f"log {table['vkey']}"]
    names = []
    for i, witness in enumerate(table.get("witness", [])):
        w = _table(witness, f"{where} witness #{i + 1}", {"name": str, "vkey": str, "url": str}, ("name", "vkey"))
        url = f" {_url(w['url'], where)}" if "url" in w else ""
        lines.append(f"witness {w['name']} {w['vkey']}{url}")
        names.append(w["name"])
    quorum = table.get("quorum", len(names))
    if not 0 <= quorum <= len(names):
        raise MalformedError(f"{where}: quorum {quorum} is not in 0..{len(names)} (the witnesses listed)")
    if quorum:
        lines += [f"group quorum {quorum} {' '.join(names)}", "quorum quorum"]
    else:
        lines.append("quorum none")
    return "\n".join(lines) + "\n"


def policy_witness_urls(text: str) -> dict[str, str]:
    """The optional URL of each `witness <name> <vkey> [<url>]` line (tlog-policy keeps it; Policy drops it)."""
    urls = {}
    for raw in text.split("\n"):
        words = raw.split("#", 1)[0].split()
        if len(words) == 4 and words[0] == "witness":
            urls[words[1]] = _url(words[3], f"policy witness {words[1]}")
    return urls


_WATCH: dict[str, type] = {
    "name": str,
    "registry": bool,
    "issuer_keys": list,
    "issuer_names": list,
    "expected": str,
    "expected_command": list,
    "revocations": bool,
    "logs": list,
}


def _watch(position: int, value: Any, base: Path) -> WatchRule:
    where = f"[[watch]] #{position + 1}"
    table = _table(value, where, _WATCH, ("name",))
    name = table["name"]
    if not name or name in ("test-alert",) or name.startswith("log-"):
        raise MalformedError(f"{where}: name {name!r} is empty or reserved (log-*, test-alert)")
    keys = _strings(table.get("issuer_keys", []), f"{where}.issuer_keys")
    try:
        for vkey in keys:
            parse_statement_key(vkey, "issuer key")
    except TlogError as exc:
        raise MalformedError(f"{where}: {exc}") from None
    names = _strings(table.get("issuer_names", []), f"{where}.issuer_names")
    registry = table.get("registry", False)
    if registry == bool(keys or names):
        raise MalformedError(f"{where}: say registry = true, or list issuer_keys / issuer_names (not both)")
    if "expected" in table and "expected_command" in table:
        raise MalformedError(f"{where}: give expected or expected_command, not both")
    if registry and ("expected" in table or "expected_command" in table):
        raise MalformedError(f"{where}: a registry rule has no expected documents")
    command = _strings(table["expected_command"], f"{where}.expected_command") if "expected_command" in table else None
    if command is not None and not command:
        raise MalformedError(f"{where}: expected_command is empty")
    logs = table.get("logs")
    return WatchRule(
        name=name,
        registry=registry,
        issuer_keys=frozenset(keys),
        issuer_names=frozenset(names),
        expected=base / table["expected"] if "expected" in table else None,
        expected_command=command,
        revocations=table.get("revocations", False),
        logs=frozenset(_strings(logs, f"{where}.logs")) if logs is not None else None,
    )


_SINK: dict[str, type] = {
    "type": str,
    "name": str,
    "path": str,
    "url": str,
    "command": list,
    "headers": dict,
    "retries": int,
    "timeout_seconds": float,
}
_SINK_NEEDS = {"stdout": set(), "file": {"path"}, "webhook": {"url"}, "command": {"command"}}
_SINK_MAY = {
    "stdout": set(),
    "file": {"path"},
    "webhook": {"url", "headers", "retries", "timeout_seconds"},
    "command": {"command", "timeout_seconds"},
}


def _sink(position: int, value: Any, base: Path) -> SinkConfig:
    where = f"[[sink]] #{position + 1}"
    table = _table(value, where, _SINK, ("type",))
    kind = table["type"]
    if kind not in SINK_TYPES:
        raise MalformedError(f"{where}: type must be one of {', '.join(SINK_TYPES)}")
    given = set(table) - {"type", "name"}
    if not _SINK_NEEDS[kind] <= given or not given <= _SINK_MAY[kind]:
        raise MalformedError(
            f"{where}: a {kind} sink takes {sorted(_SINK_MAY[kind]) or 'no options'}, "
            f"needs {sorted(_SINK_NEEDS[kind]) or 'nothing'}"
        )
    headers = tuple((k, _typed(v, str, f"{where}.headers.{k}")) for k, v in table.get("headers", {}).items())
    command = _strings(table.get("command", []), f"{where}.command")
    if kind == "command" and not command:
        raise MalformedError(f"{where}: command is empty")
    if table.get("retries", 0) < 0 or table.get("timeout_seconds", 1.0) <= 0:
        raise MalformedError(f"{where}: retries must be >= 0 and timeout_seconds > 0")
    return SinkConfig(
        type=kind,
        name=table.get("name", f"{kind}-{position + 1}"),
        path=base / table["path"] if "path" in table else None,
        url=_url(table["url"], where) if "url" in table else None,
        command=command,
        headers=headers,
        retries=table.get("retries", 5),
        timeout=table.get("timeout_seconds", 10.0),
    )
