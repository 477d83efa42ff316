"""A per-process cache that every process empties when a generation counter in Redis moves.

Hot, rarely changing lookups (host name -> hospital, API key -> partner) cost more than the
requests they serve if they hit the database every time. Each process keeps them for a few
minutes; a change anywhere bumps a counter in Redis, which every process reads at most once a
second, so a change is seen everywhere within a second (within the TTL if Redis is down) and at
once in the process that made it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable, Sequence

import redis
from django.conf import settings

log = logging.getLogger(__name__)

_GENERATION_CHECK_SECONDS = 1.0


class GenerationCache:
    def __init__(self, *, generation_key: str, ttl_seconds: float,
                 also_watch: Sequence[str] = ()) -> None:
        """`generation_key` is bumped by `invalidate()`; a bump of any key in `also_watch`
        (another cache's counter) empties this cache too."""
        self.generation_key = generation_key
        self._keys = [generation_key, *also_watch]
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, object]] = {}
        self._generation: list | None = None
        self._checked_at = 0.0
        self._redis: redis.Redis | None = None

    def _client(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.2,
                                               socket_connect_timeout=0.2)
        return self._redis

    def _check_generation(self, now: float) -> None:
        if now - self._checked_at < _GENERATION_CHECK_SECONDS:
            return
        self._checked_at = now
        try:
            generation = self._client().mget(self._keys)
        except redis.RedisError:
            return
        if generation != self._generation:
            with self._lock:
                self._entries.clear()
                self._generation = generation

    def get(self, key: Hashable, default=None):
        now = time.monotonic()
        self._check_generation(now)
        entry = self._entries.get(key)
        if entry and now - entry[0] < self._ttl:
            return entry[1]
        return default

    def put(self, key: Hashable, value) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic(), value)

    def invalidate(self) -> None:
        """Forget everything here, and tell every other process to."""
        with self._lock:
            self._entries.clear()
        try:
            pipe = self._client().pipeline()
            pipe.incr(self.generation_key)
            pipe.mget(self._keys)
            _count, generation = pipe.execute()
        except redis.RedisError:
            log.warning("could not publish a cache invalidation of %s (Redis unreachable)",
                        self.generation_key)
            return
        # This process has already forgotten everything: remember the generation it published,
        # or its next check would see "a change" and empty the fresh entries once more.
        with self._lock:
            self._generation = generation
