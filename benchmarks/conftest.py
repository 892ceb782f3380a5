"""Benchmarks run with `pytest benchmarks/ --benchmark-only` (not part of the test suite)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
