"""A single-node Apache Kafka broker in KRaft mode, from the official jars on Maven Central.

The node is both broker and controller, listens on loopback only, and keeps its
log directory under the data directory so that a restart (even after
``kill -9``) finds every acknowledged record again.
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from linkwatch.deploy import process
from linkwatch.deploy.errors import StackError
from linkwatch.deploy.java import find_java, maven_copy_dependencies
from linkwatch.deploy.status import ComponentStatus

MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"

# librdkafka logs every refused connection while the broker boots; the probe
# below expects those, so they go nowhere.
_quiet = logging.getLogger("linkwatch.deploy.kafka.probe")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


@dataclass
class KafkaBroker:
    """One local broker: where its jars, data, config and log live, and its ports."""

    version: str
    port: int
    controller_port: int
    data_dir: Path
    run_dir: Path
    cache_dir: Path
    heap: str = "512m"
    start_timeout: float = 90.0

    def __post_init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None

    # -- where things are -------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def jar_dir(self) -> Path:
        return self.cache_dir / f"kafka-{self.version}" / "libs"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "kafka.log"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "kafka.json"

    @property
    def properties_file(self) -> Path:
        return self.run_dir / "kafka-server.properties"

    @property
    def marker(self) -> str:
        # The properties path is unique per broker, so it tells ours from any other JVM.
        return str(self.properties_file)

    # -- install ------------------------------------------------------------
    def jars_installed(self) -> bool:
        return (self.jar_dir / ".complete").exists()

    def install(self) -> Path:
        """Download the broker's jars once with Maven into the cache; return their directory."""
        if self.jars_installed():
            return self.jar_dir
        find_java()
        work = self.jar_dir.parent
        work.mkdir(parents=True, exist_ok=True)
        pom = work / "pom.xml"
        pom.write_bytes(resources.files("linkwatch.deploy").joinpath("pom.xml").read_bytes())
        staging = work / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        maven_copy_dependencies(pom, staging, {"kafka.version": self.version}, work / "maven.log")
        if not any(staging.glob(f"kafka_2.13-{self.version}.jar")):
            raise StackError(
                f"Maven finished but kafka_2.13-{self.version}.jar is not in {staging}",
                f"see {work / 'maven.log'}",
            )
        (staging / ".complete").write_text(self.version)
        shutil.rmtree(self.jar_dir, ignore_errors=True)
        staging.rename(self.jar_dir)
        return self.jar_dir

    # -- run --------------------------------------------------------------
    def running(self) -> bool:
        if self._proc is not None and self._proc.poll() is None:
            # Started by this process: trust the handle. Between fork and exec the
            # child still shows our command line, so /proc would say "not ours".
            return True
        state = process.ProcessState.read(self.state_file)
        return state is not None and process.pid_alive(state.pid, self.marker)

    def answers(self, timeout: float = 2.0) -> bool:
        """True when the broker answers a metadata request."""
        return metadata_answers(self.bootstrap_servers, timeout)

    def start(self) -> bool:
        """Start the broker and wait until it answers; False if it was already running."""
        if self.running():
            if process.wait_until(self.answers, timeout=self.start_timeout, alive=self.running):
                return False
            raise StackError(
                f"a Kafka broker (pid {self._state_pid()}) runs but does not answer on "
                f"{self.bootstrap_servers}",
                f"run `linkwatch stack down` and try again; log: {self.log_file}",
            )
        process.require_free(
            {"kafka": self.port, "kafka_controller": self.controller_port},
            "the Kafka broker",
            "LINKWATCH",
        )
        java = find_java()
        self.install()
        self._write_config()
        self._format_storage(java)
        argv = [
            java,
            f"-Xmx{self.heap}",
            f"-Xms{min(256, _megabytes(self.heap))}m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.run_dir / 'kafka-log4j2.properties'}",
            "-cp",
            f"{self.jar_dir}/*",
            MAIN_CLASS,
            str(self.properties_file),
        ]
        self._proc = process.spawn(argv, self.log_file, cwd=self.run_dir)
        process.ProcessState(
            pid=self._proc.pid,
            version=self.version,
            ports={"kafka": self.port, "controller": self.controller_port},
            log=str(self.log_file),
            data_dir=str(self.data_dir),
            marker=self.marker,
            started_at=time.time(),
        ).write(self.state_file)
        if not process.wait_until(self.answers, timeout=self.start_timeout, alive=self.running):
            died = not self.running()
            self.stop()
            reason = "exited" if died else f"did not answer within {self.start_timeout:.0f} s"
            raise StackError(
                f"the Kafka broker {reason} on {self.bootstrap_servers}; last log lines:\n"
                + process.tail(self.log_file),
                f"full log: {self.log_file}",
            )
        return True

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker cleanly (SIGTERM, SIGKILL after ``timeout``); False if none ran."""
        state = process.ProcessState.read(self.state_file)
        if state is None:
            return False
        was_running = self.running()
        if was_running:
            process.terminate(state.pid, self.marker, timeout, self._proc)
            self._wait_ports_released()
        self.state_file.unlink(missing_ok=True)
        self._proc = None
        return was_running

    def kill(self) -> None:
        """SIGKILL the broker (a crash); its state file stays so ``start`` can restart it."""
        state = process.ProcessState.read(self.state_file)
        if state is not None:
            process.kill(state.pid, self.marker, self._proc)
            self._wait_ports_released()

    def _wait_ports_released(self) -> None:
        # The JVM's main thread turns zombie before its other threads have exited
        # and closed the listening sockets: wait for the ports, not for the pid.
        ports = (self.port, self.controller_port)
        process.wait_until(lambda: all(process.port_free(p) for p in ports), timeout=15)

    def status(self) -> ComponentStatus:
        state = process.ProcessState.read(self.state_file)
        base = ComponentStatus(
            name="kafka",
            role="Apache Kafka broker (KRaft, broker+controller)",
            state="stopped",
            version=self.version,
            address=self.bootstrap_servers,
            pid=None,
            data_dir=str(self.data_dir),
            log=str(self.log_file),
        )
        if state is None:
            return base
        base.version = state.version
        if not process.pid_alive(state.pid, self.marker):
            return base.with_state("stopped", f"pid {state.pid} from the last start is gone")
        base.pid = state.pid
        if self.answers():
            return base.with_state("healthy")
        return base.with_state("unhealthy", "process runs but does not answer metadata requests")

    # -- internals ----------------------------------------------------------
    def _state_pid(self) -> int | None:
        state = process.ProcessState.read(self.state_file)
        return state.pid if state else None

    def _write_config(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log4j = resources.files("linkwatch.deploy").joinpath("templates/kafka-log4j2.properties")
        (self.run_dir / "kafka-log4j2.properties").write_bytes(log4j.read_bytes())
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # A static voter set: the controller's address comes from this file on
            # every start, so a restart on other ports keeps working.
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            # One node: every internal topic must have replication factor 1, or group
            # consumers silently receive nothing and transactions time out.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "log.retention.hours": "-1",
        }
        self.properties_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))

    def _format_storage(self, java: str) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = new_cluster_id()
        argv = [
            java,
            f"-Dlog4j2.configurationFile={self.run_dir / 'kafka-log4j2.properties'}",
            "-cp",
            f"{self.jar_dir}/*",
            STORAGE_TOOL,
            "format",
            f"--cluster-id={cluster_id}",
            f"--config={self.properties_file}",
        ]
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise StackError(
                f"formatting the Kafka log directory {self.data_dir} failed: "
                + (out.stderr or out.stdout).strip()[-600:],
                "remove the directory if it holds nothing you need, then try again",
            )


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding.

    Like Kafka's own ``Uuid.randomUuid``, an id that starts with "-" is drawn again:
    command-line parsers would take it for an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def metadata_answers(bootstrap_servers: str, timeout: float = 2.0) -> bool:
    """True when the Kafka cluster at ``bootstrap_servers`` answers a metadata request."""
    from confluent_kafka.admin import AdminClient

    config: dict[str, object] = {
        "bootstrap.servers": bootstrap_servers,
        "logger": _quiet,
        "socket.timeout.ms": 2000,
    }
    # confluent-kafka accepts a logging.Logger for "logger"; its type stubs do not say so.
    admin = AdminClient(config)  # type: ignore[arg-type]
    try:
        meta = admin.list_topics(timeout=timeout)
    except Exception:
        return False
    return bool(meta.brokers)


def _megabytes(heap: str) -> int:
    unit = heap[-1].lower()
    value = int(heap[:-1]) if unit in "kmg" else int(heap)
    return {"k": value // 1024, "m": value, "g": value * 1024}.get(unit, value // (1024 * 1024))
