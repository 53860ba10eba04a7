from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from linkwatch.deploy import process


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = process.free_ports(4)
    assert len(set(ports)) == 4
    assert all(process.port_free(p) for p in ports)


def test_a_listening_port_is_neither_free_nor_closed() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not process.port_free(port)
        assert process.port_open(port)
    assert not process.port_open(port)


def test_liveness_checks_the_command_line_and_sees_zombies(tmp_path: Path) -> None:
    marker = str(tmp_path / "unique-marker")
    proc = subprocess.Popen([sys.executable, "-c", "import time,sys; time.sleep(60)", marker])
    try:
        # Until exec() the child still shows the parent's command line.
        assert process.wait_until(lambda: process.pid_alive(proc.pid, marker), timeout=5)
        assert not process.pid_alive(proc.pid, "some-other-server")
        proc.kill()
        # Not yet reaped: a zombie, which must not count as running.
        assert process.wait_until(lambda: not process.pid_alive(proc.pid, marker), timeout=5)
    finally:
        proc.kill()
        proc.wait()
    assert not process.pid_alive(proc.pid, marker)
    assert not process.pid_alive(2**22 + 7)


def test_state_round_trips_and_tolerates_garbage(tmp_path: Path) -> None:
    state = process.ProcessState(
        pid=os.getpid(),
        version="4.4.0",
        ports={"kafka": 1},
        log="l",
        data_dir="d",
        marker="m",
        started_at=1.0,
    )
    path = tmp_path / "x.json"
    state.write(path)
    assert process.ProcessState.read(path) == state
    path.write_text("{not json")
    assert process.ProcessState.read(path) is None
    assert process.ProcessState.read(tmp_path / "missing.json") is None


def test_tail_returns_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert process.tail(log, 3) == "line 97\nline 98\nline 99"
    assert process.tail(tmp_path / "nothing.log") == ""


def test_cluster_ids_never_look_like_options() -> None:
    from linkwatch.deploy.kafka import new_cluster_id

    ids = [new_cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)
