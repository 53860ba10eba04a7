"""A private ClickHouse server for the native-protocol path.

Debian's ``clickhouse-server`` package is started from linkwatch's own
configuration (its own data directory, log files and loopback ports), never
from ``/etc/clickhouse-server``, so it cannot disturb a system installation and
several test sessions can each run one.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from linkwatch.deploy import process
from linkwatch.deploy.errors import StackError
from linkwatch.deploy.status import ComponentStatus


def find_server_binary() -> str:
    for name in ("clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"):
        found = shutil.which(name)
        if found:
            return found
    raise StackError(
        "clickhouse-server was not found",
        "install it with `apt-get install --no-install-recommends clickhouse-server`, or point "
        "CLICKHOUSE_URL at a server you run",
    )


@dataclass
class ClickHouseServer:
    """One local ClickHouse server: its ports, data directory and run directory."""

    tcp_port: int
    http_port: int
    interserver_port: int
    data_dir: Path
    run_dir: Path
    start_timeout: float = 60.0

    def __post_init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"clickhouse://127.0.0.1:{self.tcp_port}/default"

    @property
    def config_file(self) -> Path:
        return self.run_dir / "clickhouse-config.xml"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "clickhouse-server.log"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "clickhouse-server.json"

    @property
    def marker(self) -> str:
        return str(self.config_file)

    def running(self) -> bool:
        if self._proc is not None and self._proc.poll() is None:
            # Started by this process: trust the handle. Between fork and exec the
            # child still shows our command line, so /proc would say "not ours".
            return True
        state = process.ProcessState.read(self.state_file)
        return state is not None and process.pid_alive(state.pid, self.marker)

    def server_version(self) -> str | None:
        """The server's own version string, or None when it does not answer."""
        from clickhouse_driver import Client

        client = Client(
            host="127.0.0.1", port=self.tcp_port, connect_timeout=2, send_receive_timeout=5
        )
        try:
            rows = client.execute("SELECT version()")
            return str(rows[0][0])
        except Exception:
            return None
        finally:
            client.disconnect()

    def answers(self) -> bool:
        return process.port_open(self.tcp_port) and self.server_version() is not None

    def start(self) -> bool:
        """Start the server and wait until it answers; False if it was already running."""
        if self.running():
            if process.wait_until(self.answers, timeout=self.start_timeout, alive=self.running):
                return False
            raise StackError(
                f"a ClickHouse server runs but does not answer on port {self.tcp_port}",
                f"run `linkwatch stack down` and try again; log: {self.log_file}",
            )
        binary = find_server_binary()
        process.require_free(
            {
                "clickhouse_tcp": self.tcp_port,
                "clickhouse_http": self.http_port,
                "clickhouse_interserver": self.interserver_port,
            },
            "the ClickHouse server",
            "LINKWATCH",
        )
        self._write_config()
        argv = [binary, f"--config-file={self.config_file}"]
        self._proc = process.spawn(
            argv, self.run_dir / "clickhouse-server.stdout", cwd=self.run_dir
        )
        process.ProcessState(
            pid=self._proc.pid,
            version="",
            ports={"tcp": self.tcp_port, "http": self.http_port},
            log=str(self.log_file),
            data_dir=str(self.data_dir),
            marker=self.marker,
            started_at=time.time(),
        ).write(self.state_file)
        if not process.wait_until(self.answers, timeout=self.start_timeout, alive=self.running):
            died = not self.running()
            self.stop()
            reason = "exited" if died else f"did not answer within {self.start_timeout:.0f} s"
            errors = process.tail(self.run_dir / "clickhouse-server.err.log") or process.tail(
                self.run_dir / "clickhouse-server.stdout"
            )
            raise StackError(
                f"the ClickHouse server {reason} on port {self.tcp_port}; "
                f"last log lines:\n{errors}",
                f"full log: {self.log_file}",
            )
        return True

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the server (SIGTERM lets running queries finish); False if none ran."""
        state = process.ProcessState.read(self.state_file)
        if state is None:
            return False
        was_running = self.running()
        if was_running:
            process.terminate(state.pid, self.marker, timeout, self._proc)
            # A stopped server can linger as a zombie holding its port for a moment.
            process.wait_until(lambda: not process.port_open(self.tcp_port), timeout=10)
        self.state_file.unlink(missing_ok=True)
        self._proc = None
        return was_running

    def status(self) -> ComponentStatus:
        state = process.ProcessState.read(self.state_file)
        base = ComponentStatus(
            name="clickhouse-server",
            role="ClickHouse server (native protocol)",
            state="stopped",
            version="",
            address=self.url,
            pid=None,
            data_dir=str(self.data_dir),
            log=str(self.log_file),
        )
        if state is None:
            return base
        if not process.pid_alive(state.pid, self.marker):
            return base.with_state("stopped", f"pid {state.pid} from the last start is gone")
        base.pid = state.pid
        version = self.server_version()
        if version is None:
            return base.with_state("unhealthy", "process runs but does not answer queries")
        base.version = version
        return base.with_state("healthy")

    def _write_config(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("", "tmp", "user_files", "format_schemas"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        templates = resources.files("linkwatch.deploy").joinpath("templates")
        users = self.run_dir / "clickhouse-users.xml"
        users.write_bytes(templates.joinpath("clickhouse-users.xml").read_bytes())
        config = (
            templates.joinpath("clickhouse-config.xml")
            .read_text()
            .format(
                log=self.log_file,
                errorlog=self.run_dir / "clickhouse-server.err.log",
                http_port=self.http_port,
                tcp_port=self.tcp_port,
                interserver_port=self.interserver_port,
                data_dir=self.data_dir,
                users_config=users,
                run_dir=self.run_dir,
            )
        )
        self.config_file.write_text(config)
