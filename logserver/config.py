"""Server configuration: defaults, overridden by a TOML file (every option documented in config.example.toml)."""

import math
from dataclasses import dataclass, field, fields
from typing import Any

from tlogcore.errors import MalformedError
from tlogcore.freshness import REFRESH_SECONDS
from tlogcore.vkeys import WITNESS_KEYS, parse_key_for

DEFAULT_TILE_CACHE_BYTES = 16 * 1024 * 1024
DEFAULT_WARM_SECONDS = 10.0  # [server] warm_seconds (logserver/warmup.py)


@dataclass(frozen=True)
class WitnessConfig:
    name: str  # for status, metrics and the published policy: always the witness key's own name
    url: str  # submission prefix: POST <url>/add-checkpoint
    vkey: str  # the witness's cosignature verifier key
    more_vkeys: tuple[str, ...] = ()  # its other keys: a witness that also cosigns with ML-DSA-44 (type 0x06)

    @property
    def vkeys(self) -> tuple[str, ...]:
        """Every cosignature key of this witness: a line is attached only when one of them verifies it."""
        return (self.vkey, *self.more_vkeys)


@dataclass(frozen=True)
class ServerConfig:
    origin: str | None = None  # chosen on first run when unset; must then stay the same
    listen: str = "127.0.0.1:8080"
    verify_workers: int | None = None  # processes checking signatures of big batches; default: one per core
    workers: int = 1  # processes serving the port; one sequences, the others forward submissions (workers.py)
    warm_seconds: float = (
        DEFAULT_WARM_SECONDS  # at start, read what proofs read, at most this long (warmup.py); 0 = off
    )
    tile_cache_bytes: int = DEFAULT_TILE_CACHE_BYTES  # full tiles and entry bundles kept in memory; 0 = off
    request_log_flush_ms: int = 250  # request lines written together at least this often (requestlines.py); 0 = each
    flush_interval_ms: int = 100
    max_batch: int = 10_000
    max_pool: int = 50_000
    max_body_bytes: int = 4 * 1024 * 1024
    max_batch_statements: int = 1000
    max_future_seconds: int = 300
    # [limits], abuse (RELIABILITY.md "Limits and abuse"); a rate of 0 means off (the default).
    client_requests_per_second: float = 0.0
    client_burst: int = 100
    issuer_statements_per_second: float = 0.0
    issuer_burst: int = 1000
    rate_limit_max_keys: int = 100_000  # buckets kept per limiter (memory bound); least recently used go first
    trusted_proxy_header: str = ""  # e.g. "x-forwarded-for", only behind a proxy that always sets it
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    keep_alive_seconds: float = 5.0
    max_connections: int = 1000
    lease_ttl_seconds: float = 5.0
    sqlite_busy_timeout_ms: int = 5000
    engine: str = "sqlite"  # [storage]: "sqlite" (log.db in --data) or "postgresql" (postgresql_dsn)
    postgresql_dsn: str = ""  # e.g. "postgresql://tlog@db.example/tlog"; several servers may share one database
    postgresql_pool_size: int = 10  # connections per process for reads and commits (plus one for the lease)
    witness_timeout_ms: int = 2000
    witness_retries: int = 2
    # the newest checkpoint sent to the witnesses again after this long without a round (logserver/witnessing.py
    # `refresh`; verifiers refuse to call a status proven on an hour-old one, tlogcore/freshness.py); 0 = never
    witness_refresh_seconds: int = REFRESH_SECONDS
    witnesses: tuple[WitnessConfig, ...] = field(default_factory=tuple)
    tiles_dir: str = ""  # [static]: keep the read path as files here (logserver/static_tiles.py); "" = off
    # [status_index]: provable status (docs/status-proofs.md): update the index and log its root this often; 0 = off
    index_interval_ms: int = 0
    index_shards: int = 2  # processes making a big update, one per half of the tree (statusshards.py); 1 = none


_ZERO_MEANS_OFF = frozenset(
    {
        "client_requests_per_second",
        "issuer_statements_per_second",
        "witness_refresh_seconds",
        "tile_cache_bytes",
        "index_interval_ms",
        "warm_seconds",
        "request_log_flush_ms",
    }
)

_SECTIONS: dict[str, dict[str, type]] = {
    "log": {"origin": str},
    "server": {
        "listen": str,
        "verify_workers": int,
        "workers": int,
        "tile_cache_bytes": int,
        "warm_seconds": float,
        "request_log_flush_ms": int,
    },
    "sequencer": {"flush_interval_ms": int, "max_batch": int, "max_pool": int, "lease_ttl_seconds": float},
    "limits": {
        "max_body_bytes": int,
        "max_batch_statements": int,
        "max_future_seconds": int,
        "client_requests_per_second": float,
        "client_burst": int,
        "issuer_statements_per_second": float,
        "issuer_burst": int,
        "rate_limit_max_keys": int,
        "trusted_proxy_header": str,
        "header_timeout_seconds": float,
        "body_timeout_seconds": float,
        "keep_alive_seconds": float,
        "max_connections": int,
    },
    "storage": {"sqlite_busy_timeout_ms": int, "engine": str, "postgresql_dsn": str, "postgresql_pool_size": int},
    "witnessing": {"witness_timeout_ms": int, "witness_retries": int, "witness_refresh_seconds": int},
    "static": {"tiles_dir": str},
    "status_index": {"index_interval_ms": int, "index_shards": int},
}


def config_from_toml(document: dict[str, Any]) -> ServerConfig:
    """Build a ServerConfig from a parsed TOML document; unknown keys and wrong types are errors."""
    values: dict[str, Any] = {}
    for section, content in document.items():
        if section == "witness":
            values["witnesses"] = _witnesses(_list(content, "witness"))
            continue
        if section not in _SECTIONS or not isinstance(content, dict):
            raise MalformedError(f"config: unknown section [{section}]")
        for key, value in content.items():
            want = _SECTIONS[section].get(key)
            if want is None:
                raise MalformedError(f"config: unknown option {section}.{key}")
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                if abs(value) > 2**1023:  # fuzzing: float() of a TOML integer this large raises OverflowError
                    raise MalformedError(f"config: {section}.{key} must be a finite number")
                value = float(value)
            if not isinstance(value, want) or isinstance(value, bool):
                raise MalformedError(f"config: {section}.{key} must be a {want.__name__}")
            if isinstance(value, float) and not math.isfinite(value):  # fuzzing: TOML has nan and inf
                raise MalformedError(f"config: {section}.{key} must be a finite number")
            if isinstance(value, int | float) and (value < 0 or (value == 0 and key not in _ZERO_MEANS_OFF)):
                raise MalformedError(f"config: {section}.{key} must be positive")
            values[key] = value
    known = {f.name for f in fields(ServerConfig)}
    config = ServerConfig(**{k: v for k, v in values.items() if k in known})
    if config.index_shards not in (1, 2):
        raise MalformedError(f"config: status_index.index_shards must be 1 or 2, not {config.index_shards}")
    if config.engine not in ("sqlite", "postgresql"):
        raise MalformedError(f'config: storage.engine must be "sqlite" or "postgresql", not {config.engine!r}')
    if config.engine == "postgresql" and not config.postgresql_dsn:
        raise MalformedError('config: storage.engine = "postgresql" needs storage.postgresql_dsn')
    return config


def _list(content: Any, name: str) -> list[dict[str, Any]]:
    if not isinstance(content, list) or not all(isinstance(x, dict) for x in content):
        raise MalformedError(f"config: [[{name}]] must be an array of tables")
    return content


def _witnesses(tables: list[dict[str, Any]]) -> tuple[WitnessConfig, ...]:
    witnesses: list[WitnessConfig] = []
    for position, table in enumerate(tables):
        witness = _witness(position, table)
        if any(w.name == witness.name for w in witnesses):
            raise MalformedError(
                f"config: [[witness]] #{position + 1} names witness {witness.name!r}, already configured: "
                "list each witness once"
            )
        witnesses.append(witness)
    return tuple(witnesses)


def _witness(position: int, table: dict[str, Any]) -> WitnessConfig:
    """`vkey` is one key, or a list of the witness's keys (e.g. its Ed25519 and its ML-DSA-44 key, same name)."""
    where = f"config: [[witness]] #{position + 1}"
    keys = set(table)
    vkey_value = table.get("vkey")
    vkeys: list[str] = [vkey_value] if isinstance(vkey_value, str) else _string_list(vkey_value)
    strings = all(isinstance(table[k], str) for k in keys - {"vkey"})
    if not {"url", "vkey"} <= keys <= {"name", "url", "vkey"} or not strings or not vkeys:
        raise MalformedError(f"{where} needs url and vkey, and may have name (vkey: a string, or a list of its keys)")
    parsed = [parse_key_for(v, WITNESS_KEYS, f"{where} vkey (a witness's cosignature key)") for v in vkeys]
    if len({v.vkey for v in parsed}) != len(parsed) or len({v.name for v in parsed}) != 1:
        raise MalformedError(f"{where}: the vkeys must be different keys of one witness (one key name)")
    # Issue 21: the name is the witness key's own (what `tlog-witness info` prints, what its cosignatures carry);
    # a free label here named the same witness two ways. `name` may be left out; when given it must agree.
    name = parsed[0].name
    if table.get("name", name) != name:
        raise MalformedError(f"{where} name {table['name']!r} is not its key's name {name!r}: use it or leave name out")
    return WitnessConfig(name, table["url"].rstrip("/"), vkeys[0], tuple(vkeys[1:]))


def _string_list(value: Any) -> list[str]:
    """`value` if it is a list of 1 to 4 strings, else an empty list."""
    ok = isinstance(value, list) and 0 < len(value) <= 4 and all(isinstance(v, str) for v in value)
    return list(value) if ok else []
