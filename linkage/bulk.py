"""Helpers for the functions that work on a whole batch of records at once."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the duration of a batch operation.

    A batch creates millions of small objects (records, tuples, dict entries) that all stay
    alive to the end; the collector would otherwise walk every one of them again and again
    for cycles they do not form. Objects are still freed as soon as they are unused; the
    collector runs again, as before, once the batch is done.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
