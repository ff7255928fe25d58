"""A token bucket: ``rate`` operations per second, in bursts of at most ``burst``."""

from __future__ import annotations


class TokenBucket:
    """Refills continuously; each operation takes one token or is refused."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = now

    def full(self, now: float) -> bool:
        """Whether the bucket has refilled to its burst by ``now``."""
        elapsed = max(0.0, now - self._stamp)
        return self._tokens + elapsed * self._rate >= self._burst

    def take(self, now: float) -> float:
        """Take a token at time ``now``: 0.0 if granted, else seconds until one is free."""
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate
