"""Helpers for the functions that work on a whole batch of records at once."""

from __future__ import annotations

import gc
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from itertools import count

import numpy as np
import numpy.typing as npt


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


def number_distinct(
    values: Sequence[Hashable],
) -> tuple[dict[Hashable, int], npt.NDArray[np.intp]]:
    """Number the distinct values in the order they first appear: the distinct values (a
    dictionary, in that order) and each value's number, in one dictionary pass."""
    # Each value's first position: a value met before gets the position it was met at.
    first: dict[Hashable, int] = {}
    first_at = np.fromiter(map(first.setdefault, values, count()), np.intp, len(values))
    number = np.cumsum(first_at == np.arange(len(values))) - 1
    return first, number[first_at]
