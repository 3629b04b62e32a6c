"""What the log's endpoints share: storage, sequencer, rules, keys, limits and metrics, passed in by `cli.py`
(DESIGN.md: configuration and collaborators passed in, nothing global)."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from logserver import proofs
from logserver.config import DEFAULT_TILE_CACHE_BYTES
from logserver.metrics import Metrics
from logserver.ratelimit import RateLimiter
from logserver.readcache import ReadCache
from logserver.sequencer import Sequencer
from logserver.statusstore import StatusStore
from logserver.storage import Storage
from logserver.submission import SubmissionRules
from logserver.warmup import Warmup
from logserver.workerpool import SignaturePool
from tlogcore.logkey import LogKeyRotation


@dataclass
class Limits:
    max_body: int = 4 * 1024 * 1024
    max_batch: int = 1000
    body_timeout: float = 30.0  # seconds to receive a whole request body (slow clients, RELIABILITY.md)
    issuer_limiter: RateLimiter | None = None  # statements per issuer key (logserver/ratelimit.py); None = off


@dataclass
class LogState:
    storage: Storage
    sequencer: Sequencer
    rules: SubmissionRules
    log_vkey: str
    registry_vkeys: list[str]
    metrics: Metrics = field(default_factory=Metrics)
    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], float] = time.time
    witness_status: Callable[[], list[dict[str, Any]]] = list
    parse_pool: SignaturePool | None = None  # worker processes for signature checks of big batches
    parse_workers: int = 1
    tile_cache_bytes: int = DEFAULT_TILE_CACHE_BYTES
    status: StatusStore | None = None  # the status index (statusstore.py); None: lookups carry no index proof
    trust_rotations: Callable[[], tuple[dict[str, object], ...]] = tuple  # for /verify (verifierpage.read_rotations)
    warmup: Warmup = field(default_factory=Warmup)  # what /healthz says while the reads warm (warmup.py)

    def __post_init__(self) -> None:
        self.tiles = proofs.TileReader(self.storage, self.tile_cache_bytes)
        self.reads = ReadCache(self.storage)  # parts of read answers that do not change (readcache.py)

    def log_vkeys(self) -> list[str]:
        """The log's keys, the first one first, then each its rotations announced (logkeys.py)."""
        keys = self.sequencer.keys
        return [self.log_vkey, *(r.new for r in keys.rotations)] if keys is not None else [self.log_vkey]

    def log_key_rotations(self) -> tuple[LogKeyRotation, ...]:
        """The rotations the log holds, in log order (checked when they were logged)."""
        keys = self.sequencer.keys
        return keys.rotations if keys is not None else ()


def state_of(request: Request) -> LogState:
    """The state `build_app` put on the application."""
    state: LogState = request.app.state.log
    return state
