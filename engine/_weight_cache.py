"""Arrays derived from a layer's weights (Winograd's ``G g G^T``, kernel spectra), kept between calls.

cuDNN and oneDNN transform a layer's filters once and reuse them; we do the same when the caller
names the weights. A caller passes ``weight_key`` (any hashable) to :meth:`Engine.run` and
promises that equal keys mean equal weight values, e.g. ``(model serial, parameter name,
tensor._version)``: a key that changes whenever the weights change is what keeps a cached
transform from going stale. Without a key nothing is cached.

One cache serves every engine of the process, bounded in bytes: the least recently used entries
are dropped first, and an entry larger than the whole budget is never stored (it is rebuilt on
each call instead). Cached arrays are read-only.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import NamedTuple

import numpy as np

DEFAULT_LIMIT_BYTES = 512 * 2**20


class WeightCacheInfo(NamedTuple):
    """What one engine's share of the cache holds, and how often it was asked."""

    hits: int
    misses: int
    entries: int
    bytes: int
    limit_bytes: int  # the budget of the whole cache, shared by all engines


def _nbytes(value: object) -> int:
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, tuple):
        return sum(_nbytes(v) for v in value)
    return 0


def _freeze(value: object) -> None:
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, tuple):
        for v in value:
            _freeze(v)


class WeightCache:
    """An LRU of weight-derived arrays, bounded in bytes, with per-owner counters."""

    def __init__(self, limit_bytes: int = DEFAULT_LIMIT_BYTES) -> None:
        self._entries: OrderedDict[tuple, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._limit = int(limit_bytes)
        self._hits: dict[int, int] = {}
        self._misses: dict[int, int] = {}
        self._lock = threading.Lock()

    @property
    def limit_bytes(self) -> int:
        return self._limit

    def set_limit(self, limit_bytes: int) -> None:
        """Change the budget (bytes, >= 0); entries beyond it are dropped at once."""
        if limit_bytes < 0:
            raise ValueError(f"the weight cache limit must be >= 0 bytes, got {limit_bytes}")
        with self._lock:
            self._limit = int(limit_bytes)
            self._evict()

    def get(self, owner: int, weight_key: Hashable, tag: Hashable, build: Callable[[], object]) -> object:
        """The cached value for ``(owner, weight_key, tag)``, built (and stored) on a miss."""
        key = (owner, weight_key, tag)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self._hits[owner] = self._hits.get(owner, 0) + 1
                return found[0]
            self._misses[owner] = self._misses.get(owner, 0) + 1
        value = build()  # outside the lock: a transform can take a while
        size = _nbytes(value)
        if size > self._limit:
            return value
        _freeze(value)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (value, size)
            self._bytes += size
            self._evict()
        return value

    def _evict(self) -> None:
        while self._bytes > self._limit and self._entries:
            _, (_, size) = self._entries.popitem(last=False)
            self._bytes -= size

    def clear(self, owner: int | None = None) -> None:
        """Drop one owner's entries and counters (or everything)."""
        with self._lock:
            if owner is None:
                self._entries.clear()
                self._bytes = 0
                self._hits.clear()
                self._misses.clear()
                return
            for key in [k for k in self._entries if k[0] == owner]:
                self._bytes -= self._entries.pop(key)[1]
            self._hits.pop(owner, None)
            self._misses.pop(owner, None)

    def info(self, owner: int) -> WeightCacheInfo:
        with self._lock:
            mine = [size for key, (_, size) in self._entries.items() if key[0] == owner]
            return WeightCacheInfo(
                self._hits.get(owner, 0), self._misses.get(owner, 0), len(mine), sum(mine), self._limit
            )

    @property
    def total_bytes(self) -> int:
        return self._bytes


SHARED = WeightCache()


def set_weight_cache_limit(limit_bytes: int) -> None:
    """Set the byte budget of the weight cache that all engines share (default 512 MiB)."""
    SHARED.set_limit(limit_bytes)
