"""Concept-drift detectors on synthetic performance streams with a known change point:
the alarm comes within a bounded delay, and a stationary stream raises none."""

from __future__ import annotations

import numpy as np
import pytest

from policyengine.drift import ADWIN, CUSUM, PageHinkley, detect
from policyengine.drift.stream import StreamDetector

CHANGE = 2_000


def errors(seed: int, before: float, after: float, n: int = 4_000) -> np.ndarray:
    """0/1 prediction errors whose rate jumps from `before` to `after` at CHANGE."""
    rng = np.random.default_rng(seed)
    rate = np.where(np.arange(n) < CHANGE, before, after)
    return (rng.random(n) < rate).astype(np.float64)


def delay(detector: StreamDetector, stream: np.ndarray) -> int | None:
    hits = detect(detector, stream)
    assert not [h for h in hits if h < CHANGE], f"false alarm before the change: {hits}"
    after = [h for h in hits if h >= CHANGE]
    return after[0] - CHANGE if after else None


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    ("make", "max_delay"),
    [(PageHinkley, 400), (ADWIN, 200)],
)
def test_error_rate_jump_is_detected_quickly(seed: int, make: type, max_delay: int) -> None:
    d = delay(make(), errors(seed, 0.1, 0.4))
    assert d is not None and d <= max_delay


@pytest.mark.parametrize("seed", range(5))
def test_cusum_detects_a_one_sigma_shift(seed: int) -> None:
    rng = np.random.default_rng(seed)
    stream = np.concatenate((rng.normal(0, 1, CHANGE), rng.normal(1, 1, 1_000)))
    d = delay(CUSUM(), stream)
    assert d is not None and d <= 60
    # with the in-control parameters known, detection is as fast
    d = delay(CUSUM(target=0.0, sigma=1.0), stream)
    assert d is not None and d <= 60


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("make", [PageHinkley, ADWIN])
def test_stationary_error_stream_raises_no_alarm(seed: int, make: type) -> None:
    assert detect(make(), errors(100 + seed, 0.1, 0.1, n=20_000)) == []


@pytest.mark.parametrize("seed", range(3))
def test_stationary_gaussian_stream_raises_no_cusum_alarm(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    assert detect(CUSUM(), rng.normal(5, 2, 2_000)) == []


def test_decreases_are_watched_when_asked() -> None:
    stream = errors(7, 0.4, 0.05)
    assert delay(PageHinkley(), stream) is None
    d = delay(PageHinkley(direction="decrease"), stream)
    assert d is not None and d <= 400
    up = CUSUM(direction="increase", target=0.4, sigma=0.49)
    assert delay(up, stream) is None


def test_detectors_reset_and_can_fire_again() -> None:
    rng = np.random.default_rng(11)
    stream = np.concatenate([(rng.random(2_000) < p).astype(float) for p in (0.05, 0.5, 0.05, 0.5)])
    hits = detect(ADWIN(), stream)
    assert len(hits) >= 2
    w = ADWIN()
    for x in stream[:3_000]:
        w.update(x)
    # the window has dropped the old regime and tracks the new error rate
    assert 0 < w.width < 1_500 and abs(w.mean - 0.5) < 0.05


def test_non_finite_observations_are_rejected() -> None:
    for d in (PageHinkley(), ADWIN(), CUSUM()):
        with pytest.raises(ValueError, match="finite"):
            d.update(float("nan"))
    with pytest.raises(ValueError, match="sigma"):
        CUSUM(sigma=0.0)
