"""Starting, watching and stopping one background server process.

A server started by ``linkwatch stack up`` outlives the command that started
it, so everything needed to find it again (pid, ports, log file, version) is
kept in a small JSON state file. Liveness is checked against ``/proc`` rather
than trusted from the file: a pid can be reused, and a killed server can linger
as a zombie.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from linkwatch.deploy.errors import StackError


@dataclass(frozen=True)
class ProcessState:
    """What is remembered about a started server between commands."""

    pid: int
    version: str
    ports: dict[str, int]
    log: str
    data_dir: str
    marker: str
    started_at: float

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> ProcessState | None:
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
            return cls(**raw)
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None


def pid_alive(pid: int, marker: str = "") -> bool:
    """True when ``pid`` runs, is not a zombie, and its command line holds ``marker``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    # The state letter follows the parenthesised command name, which may hold spaces.
    state = stat.rsplit(")", 1)[-1].split()[0]
    if state in ("Z", "X"):
        return False
    return marker in cmdline


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could bind ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct loopback ports that are free now (for tests and ephemeral stacks)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def require_free(ports: dict[str, int], component: str, setting_prefix: str) -> None:
    """Fail with the port, the component and the setting to change when a port is taken."""
    for name, port in ports.items():
        if not port_free(port):
            setting = f"{setting_prefix}_{name.upper()}_PORT"
            raise StackError(
                f"cannot start {component}: port {port} ({name}) on 127.0.0.1 is already in use",
                f"stop whatever listens there, or choose another port with {setting}",
            )


def spawn(
    argv: Sequence[str], log: Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` detached from the terminal, stdout and stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout: float,
    alive: Callable[[], bool] | None = None,
    interval: float = 0.25,
) -> bool:
    """Poll ``ready`` until it is true (True), the process dies or time runs out (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if alive is not None and not alive():
            return False
        time.sleep(interval)
    return ready()


def terminate(
    pid: int, marker: str, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Stop ``pid`` with SIGTERM, then SIGKILL after ``timeout`` seconds; reap it if it is ours."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_until(lambda: not _running(pid, marker, proc), timeout=timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not _running(pid, marker, proc), timeout=10)


def kill(pid: int, marker: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    """SIGKILL ``pid`` and wait until it is gone: a crash, as tests need one."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not _running(pid, marker, proc), timeout=10)


def _running(pid: int, marker: str, proc: subprocess.Popen[bytes] | None) -> bool:
    if proc is not None and proc.pid == pid:
        return proc.poll() is None
    return pid_alive(pid, marker)


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file, or an empty string."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
