"""The linker's lease: one active worker, the others stand by.

The linker must be single: two linkers would each number persons of their own. Every
worker joins one consumer group on a topic with a single partition
(``linkwatch.worker-lease.v1``); the member Kafka assigns that partition to is the
active worker, the others wait. When the active worker dies, the group's session
times out, the partition moves to a standby, and it takes over: it opens the
warehouse, rebuilds the linker from its snapshot and log, and resumes from the
committed offsets. A worker that loses the partition while running stops at once
(the process ends), so two linkers never run together.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from confluent_kafka import TopicPartition

from linkwatch.streams import topics
from linkwatch.streams.kafka_clients import make_consumer

log = logging.getLogger("linkwatch.worker")
LEASE_GROUP = "linkwatch-linker-lease"


class Lease:
    """Membership of the lease group, kept by a thread of its own."""

    def __init__(self, bootstrap_servers: str, session_timeout_ms: int = 10_000) -> None:
        self.held = threading.Event()
        self._stop = threading.Event()
        self._consumer = make_consumer(
            bootstrap_servers,
            LEASE_GROUP,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=1_000,
            # Incremental: a standby joining does not take the partition from the active.
            partition_assignment_strategy="cooperative-sticky",
        )
        self._thread = threading.Thread(target=self._keep, name="lease", daemon=True)

    def acquire(self, say: Any = log.info) -> bool:
        """Join the group and wait (as a standby) until this worker holds the lease.

        False when the lease was released (the worker is stopping) before it came.
        """
        self._consumer.subscribe(
            [topics.WORKER_LEASE.name], on_assign=self._assigned, on_revoke=self._revoked
        )
        self._thread.start()
        waiting_since = time.monotonic()
        told = False
        while not self.held.wait(0.5):
            if self._stop.is_set():
                return False
            if not told and time.monotonic() - waiting_since > 15.0:
                say("standby: another worker holds the linker; waiting to take over")
                told = True
        say("this worker is the active linker")
        return True

    def release(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _keep(self) -> None:
        try:
            while not self._stop.is_set():
                self._consumer.consume(100, timeout=0.5)  # the topic holds no messages
        finally:
            self._consumer.close()

    def _assigned(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        if partitions:
            self.held.set()

    def _revoked(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        if partitions and self.held.is_set() and not self._stop.is_set():
            log.error("the linker's lease moved to another worker; stopping this one")
            logging.shutdown()
            os._exit(1)
