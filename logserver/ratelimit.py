"""Token-bucket rate limits, keyed by client address or issuer key. Pure: the clock is passed in, no I/O.

Each key has a bucket holding up to `burst` tokens, refilled at `rate` tokens per second; a request costs
tokens (one per request, or one per statement for issuers). Memory is bounded: at most `max_keys` buckets are
kept, the least recently used are forgotten first. A forgotten key starts again with a full bucket, which is
what it would have had anyway once idle for burst/rate seconds; under a flood of distinct addresses the
eviction order keeps the busiest (most recent) keys, so a client cannot reset its own bucket by itself.
"""

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass
class Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class Refusal:
    """Why a take was refused: the key, and how long until enough tokens are back (never less than 1 s)."""

    key: str
    retry_after: int
    impossible: bool  # asked for more than the burst: no wait will help, the request must be split


class RateLimiter:
    def __init__(self, rate: float, burst: float, clock: Callable[[], float], max_keys: int = 100_000) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate must be positive, burst at least 1, max_keys at least 1")
        self.rate, self.burst, self.clock, self.max_keys = rate, float(burst), clock, max_keys
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, cost: float = 1.0) -> Refusal | None:
        """Take `cost` tokens from `key`'s bucket; None if granted, else a Refusal (nothing is taken)."""
        return self.take_many({key: cost})

    def take_many(self, costs: Mapping[str, float]) -> Refusal | None:
        """All or nothing: every key must have its tokens, else none is charged (one batch, several issuers)."""
        now = self.clock()
        buckets = {key: self._refill(key, now) for key in costs}
        for key, cost in costs.items():
            if cost > self.burst:
                return Refusal(key, math.ceil(self.burst / self.rate), impossible=True)
            missing = cost - buckets[key].tokens
            if missing > 0:
                return Refusal(key, max(1, math.ceil(missing / self.rate)), impossible=False)
        for key, cost in costs.items():
            buckets[key].tokens -= cost
        return None

    def _refill(self, key: str, now: float) -> Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(self.burst, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            # max(0, ...): a clock stepping backwards must not drain (or overfill) a bucket.
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.updated = max(bucket.updated, now)
        return bucket
