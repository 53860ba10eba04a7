"""Snapshots of the worker's linker, so that a restart replays only the tail of its log.

The linker's recovery log is the truth; a snapshot is a shortcut through it: the
linker's whole state after the first ``log_position`` entries of the log. A restarted
worker loads the snapshot, checks that the log entry just before that position is the
last identity the snapshot holds (the same log, not another cluster's or an older
topic's), and replays the log from there. A snapshot that is missing, unreadable,
of another format, built with another model or not matching the log is ignored:
the worker then replays the whole log, which gives the same state, only slower.

Snapshots are the worker's own files in its state directory, written atomically
(a temporary file renamed over the old one) and read only by the worker.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any

log = logging.getLogger("linkwatch.worker")


def snapshot_path(state_dir: Path) -> Path:
    return state_dir / "worker" / "linker.snapshot"


def write_snapshot(path: Path, state: dict[str, Any]) -> int:
    """Write ``state`` to ``path`` atomically; returns the bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as out:
        pickle.dump(state, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
        os.fsync(out.fileno())
        size = out.tell()
    os.replace(partial, path)
    return size


def read_snapshot(path: Path) -> dict[str, Any] | None:
    """The snapshot at ``path``, or None (with the reason logged) when there is none to use."""
    if not path.exists():
        return None
    try:
        with open(path, "rb") as source:
            state = pickle.load(source)
    except Exception as exc:  # a torn or foreign file: replay the whole log instead
        log.warning("linker snapshot %s not used: %s", path, exc)
        return None
    if not isinstance(state, dict):
        log.warning("linker snapshot %s not used: not a linkwatch snapshot", path)
        return None
    return state
