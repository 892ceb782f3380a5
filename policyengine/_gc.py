"""Pausing CPython's cyclic garbage collector around bulk allocation."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector for a burst of allocations, then restore it.

    Compiling a bundle or deciding a batch allocates hundreds of thousands of
    objects that stay alive; each allocation burst makes the collector re-scan
    everything the process already holds (a service with large entity state pays
    the most). Reference counting still frees everything meanwhile, and any
    cycles are collected once the collector runs again. If collection was already
    disabled by the caller, it stays disabled.
    """
    enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
