"""A dict bounded in entries (the read caches: logserver/readcache.py, logserver/proofs.py)."""

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Lru(Generic[K, V]):
    """A dict bounded in entries; the least recently used goes first."""

    def __init__(self, limit: int) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._limit = limit

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> V:
        if self._limit > 0:
            self._items[key] = value
            if len(self._items) > self._limit:
                self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)
