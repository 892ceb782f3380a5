"""Concept-drift detectors for streams of model performance (once labels arrive).

Each detector takes one observation at a time — an error indicator (0/1), a loss, a
per-batch error rate — and says whether the stream's mean has changed. All three reset
after an alarm, so a stream can raise several. Parameters and their defaults are in
`spec/drift.md`; defaults match River's where River has the detector.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = ["ADWIN", "CUSUM", "PageHinkley", "StreamDetector", "detect"]

Direction = Literal["increase", "decrease", "both"]


class StreamDetector(Protocol):
    def update(self, x: float) -> bool:
        """Add one observation; True when a change is detected at it."""
        ...

    def reset(self) -> None: ...


def detect(detector: StreamDetector, stream: Iterable[float]) -> list[int]:
    """Feed a whole stream; the 0-based positions at which the detector raised alarms."""
    return [i for i, x in enumerate(stream) if detector.update(float(x))]


def _finite(x: float) -> float:
    if not math.isfinite(x):
        raise ValueError(f"stream values must be finite, got {x!r}")
    return x


@dataclass
class PageHinkley:
    """Page–Hinkley test for a change in the mean.

    With x̄ₜ the running mean, mₜ = Σ (xᵢ − x̄ᵢ − δ) accumulates deviations above the
    mean; an increase is declared when mₜ − min(m) > λ (decreases symmetrically).
    `delta` is the magnitude of change tolerated, `threshold` λ the alarm level,
    `alpha` a fading factor for mₜ (1 = none).
    """

    delta: float = 0.005
    threshold: float = 50.0
    min_instances: int = 30
    alpha: float = 1.0
    direction: Direction = "increase"
    _n: int = field(default=0, init=False)
    _mean: float = field(default=0.0, init=False)
    _up: float = field(default=0.0, init=False)
    _up_min: float = field(default=0.0, init=False)
    _down: float = field(default=0.0, init=False)
    _down_min: float = field(default=0.0, init=False)

    def reset(self) -> None:
        self._n = 0
        self._mean = self._up = self._up_min = self._down = self._down_min = 0.0

    @property
    def statistic(self) -> float:
        """Current PH value (the larger of the watched directions)."""
        up = self._up - self._up_min
        down = self._down - self._down_min
        if self.direction == "increase":
            return up
        if self.direction == "decrease":
            return down
        return max(up, down)

    def update(self, x: float) -> bool:
        x = _finite(x)
        self._n += 1
        self._mean += (x - self._mean) / self._n
        self._up = self.alpha * self._up + (x - self._mean - self.delta)
        self._down = self.alpha * self._down + (self._mean - x - self.delta)
        self._up_min = min(self._up_min, self._up)
        self._down_min = min(self._down_min, self._down)
        if self._n < self.min_instances:
            return False
        if self.statistic > self.threshold:
            self.reset()
            return True
        return False


@dataclass
class CUSUM:
    """Two-sided tabular CUSUM on standardised observations.

    zₜ = (xₜ − μ₀)/σ; S⁺ₜ = max(0, S⁺ₜ₋₁ + zₜ − k), S⁻ₜ = max(0, S⁻ₜ₋₁ − zₜ − k); an alarm
    when either exceeds h. μ₀ and σ are given, or estimated from the first `warmup`
    observations after each (re)start. k = 0.5 with h = 10 (rather than the textbook 4–5,
    whose in-control run is a few hundred observations) keeps false alarms rare — about
    one run in twenty alarms within 5,000 in-control observations, simulated — while a
    one-σ shift is still caught within ~10–35 observations.
    """

    k: float = 0.5
    h: float = 10.0
    target: float | None = None
    sigma: float | None = None
    warmup: int = 500
    direction: Direction = "both"
    _seen: list[float] = field(default_factory=list, init=False)
    _mu: float | None = field(default=None, init=False)
    _sd: float | None = field(default=None, init=False)
    _pos: float = field(default=0.0, init=False)
    _neg: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if self.sigma is not None and not self.sigma > 0:
            raise ValueError("sigma must be positive")
        self.reset()

    def reset(self) -> None:
        self._seen = []
        self._mu, self._sd = self.target, self.sigma
        self._pos = self._neg = 0.0

    @property
    def statistic(self) -> tuple[float, float]:
        return self._pos, self._neg

    def update(self, x: float) -> bool:
        x = _finite(x)
        if self._mu is None or self._sd is None:
            self._seen.append(x)
            if len(self._seen) < self.warmup:
                return False
            n = len(self._seen)
            mean = sum(self._seen) / n
            var = sum((v - mean) ** 2 for v in self._seen) / max(n - 1, 1)
            self._mu = mean if self._mu is None else self._mu
            self._sd = math.sqrt(var) if self._sd is None else self._sd
            if self._sd == 0.0:
                self._sd = 1e-12
            self._seen = []
            return False
        z = (x - self._mu) / self._sd
        self._pos = max(0.0, self._pos + z - self.k)
        self._neg = max(0.0, self._neg - z - self.k)
        hit = (self.direction != "decrease" and self._pos > self.h) or (
            self.direction != "increase" and self._neg > self.h
        )
        if hit:
            self.reset()
        return hit


@dataclass
class _Bucket:
    total: float
    variance: float
    size: int


@dataclass
class ADWIN:
    """ADWIN (Bifet & Gavaldà 2007): an adaptive window that drops its older part
    whenever the means of two sub-windows differ by more than
    ε = sqrt(2·m·σ²·ln(2·ln(n)/δ)) + (2/3)·m·ln(2·ln(n)/δ), m = 1/(n₀−w+1) + 1/(n₁−w+1),
    checked every `clock` observations over bucket boundaries (exponential histogram
    with at most `max_buckets` buckets per size). A drop is a detected change.
    """

    delta: float = 0.002
    clock: int = 32
    max_buckets: int = 5
    min_window: int = 5
    grace_period: int = 10
    _levels: list[deque[_Bucket]] = field(default_factory=list, init=False)
    _width: int = field(default=0, init=False)
    _total: float = field(default=0.0, init=False)
    _variance: float = field(default=0.0, init=False)
    _ticks: int = field(default=0, init=False)

    def reset(self) -> None:
        self._levels = []
        self._width = 0
        self._total = self._variance = 0.0
        self._ticks = 0

    @property
    def width(self) -> int:
        return self._width

    @property
    def mean(self) -> float:
        return self._total / self._width if self._width else 0.0

    @property
    def variance(self) -> float:
        return self._variance / self._width if self._width else 0.0

    def update(self, x: float) -> bool:
        x = _finite(x)
        if self._width:
            mean = self._total / self._width
            self._variance += self._width * (x - mean) ** 2 / (self._width + 1)
        self._width += 1
        self._total += x
        if not self._levels:
            self._levels.append(deque())
        self._levels[0].append(_Bucket(x, 0.0, 1))
        self._compress()
        self._ticks += 1
        if self._ticks % self.clock or self._width <= self.grace_period:
            return False
        changed = False
        while self._cut():
            self._drop_oldest()
            changed = True
        return changed

    def _compress(self) -> None:
        level = 0
        while level < len(self._levels) and len(self._levels[level]) > self.max_buckets:
            row = self._levels[level]
            a, b = row.popleft(), row.popleft()
            merged = _Bucket(
                a.total + b.total,
                a.variance
                + b.variance
                + a.size * b.size * (a.total / a.size - b.total / b.size) ** 2 / (a.size + b.size),
                a.size + b.size,
            )
            if level + 1 == len(self._levels):
                self._levels.append(deque())
            self._levels[level + 1].append(merged)
            level += 1

    def _cut(self) -> bool:
        n = self._width
        if n < 2 * self.min_window:
            return False
        dd = math.log(2.0 * math.log(n) / self.delta)
        v = self._variance / n
        n0, s0 = 0, 0.0
        # Oldest buckets sit at the highest level, leftmost first.
        for level in range(len(self._levels) - 1, -1, -1):
            for bucket in self._levels[level]:
                n0 += bucket.size
                s0 += bucket.total
                n1 = n - n0
                if n1 < self.min_window:
                    return False
                if n0 < self.min_window:
                    continue
                m = 1.0 / (n0 - self.min_window + 1) + 1.0 / (n1 - self.min_window + 1)
                eps = math.sqrt(2.0 * m * v * dd) + 2.0 / 3.0 * dd * m
                if abs(s0 / n0 - (self._total - s0) / n1) > eps:
                    return True
        return False

    def _drop_oldest(self) -> None:
        while self._levels and not self._levels[-1]:
            self._levels.pop()
        bucket = self._levels[-1].popleft()
        self._width -= bucket.size
        self._total -= bucket.total
        if self._width:
            mean_rest = self._total / self._width
            mean_b = bucket.total / bucket.size
            self._variance -= bucket.variance + bucket.size * self._width * (
                mean_b - mean_rest
            ) ** 2 / (bucket.size + self._width)
            self._variance = max(self._variance, 0.0)
        else:
            self._variance = 0.0
        while self._levels and not self._levels[-1]:
            self._levels.pop()
