"""`linkwatch stack up|down|status` as an operator runs it: a real process, real servers."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from linkwatch.deploy.process import free_ports, pid_alive

pytestmark = pytest.mark.integration

LINKWATCH = str(Path(sys.executable).parent / "linkwatch")


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    kafka, controller, tcp, http, inter = free_ports(5)
    env = {
        **os.environ,
        "LINKWATCH_DATA_DIR": str(tmp_path / "data"),
        "LINKWATCH_STATE_DIR": str(tmp_path / "state"),
        "LINKWATCH_KAFKA_PORT": str(kafka),
        "LINKWATCH_KAFKA_CONTROLLER_PORT": str(controller),
        "LINKWATCH_CLICKHOUSE_TCP_PORT": str(tcp),
        "LINKWATCH_CLICKHOUSE_HTTP_PORT": str(http),
        "LINKWATCH_CLICKHOUSE_INTERSERVER_PORT": str(inter),
        "COLUMNS": "200",
    }
    for var in ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_URL", "LINKWATCH_CONFIG"):
        env.pop(var, None)
    yield env
    subprocess.run([LINKWATCH, "stack", "down"], env=env, capture_output=True, timeout=120)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LINKWATCH, *args], env=env, capture_output=True, text=True, timeout=300)


def status(env: dict[str, str]) -> dict[str, dict[str, object]]:
    out = run(env, "stack", "status", "--json")
    return {row["name"]: row for row in json.loads(out.stdout)}


def test_up_status_up_again_down_down_again(stack_env: dict[str, str]) -> None:
    up = run(stack_env, "stack", "up")
    assert up.returncode == 0, up.stderr
    rows = status(stack_env)
    assert rows["kafka"]["state"] == "healthy"
    assert rows["kafka"]["version"] == "4.4.0"
    assert str(rows["kafka"]["log"]).endswith("kafka.log")
    assert rows["warehouse"]["state"] == "healthy"
    assert str(rows["warehouse"]["version"]).split(".")[0].isdigit()
    pid = rows["kafka"]["pid"]

    again = run(stack_env, "stack", "up")
    assert again.returncode == 0, again.stderr
    assert status(stack_env)["kafka"]["pid"] == pid  # nothing restarted

    down = run(stack_env, "stack", "down")
    assert down.returncode == 0
    assert "kafka" in down.stdout
    assert isinstance(pid, int)
    assert not pid_alive(pid)
    down_again = run(stack_env, "stack", "down")
    assert down_again.returncode == 0
    assert "nothing was running" in down_again.stdout

    after = run(stack_env, "stack", "status")
    assert after.returncode == 1
    assert status(stack_env)["kafka"]["state"] == "stopped"


def test_clickhouse_server_joins_the_stack(stack_env: dict[str, str]) -> None:
    up = run(stack_env, "stack", "up", "--clickhouse-server")
    assert up.returncode == 0, up.stderr
    rows = status(stack_env)
    assert rows["clickhouse-server"]["state"] == "healthy"
    assert str(rows["clickhouse-server"]["version"]).startswith("18.16")
    assert run(stack_env, "stack", "down").returncode == 0
    assert "clickhouse-server" not in status(stack_env)


def test_a_taken_port_is_one_clear_line_and_nothing_is_left_running(
    stack_env: dict[str, str],
) -> None:
    port = int(stack_env["LINKWATCH_KAFKA_PORT"])
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        up = run(stack_env, "stack", "up")
    assert up.returncode == 1
    error = up.stderr.strip().splitlines()[-1]
    assert f"port {port} (kafka) on 127.0.0.1 is already in use" in error
    assert "LINKWATCH_KAFKA_PORT" in error
    assert status(stack_env)["kafka"]["state"] == "stopped"


def test_a_failure_later_in_up_stops_what_it_started(stack_env: dict[str, str]) -> None:
    port = int(stack_env["LINKWATCH_CLICKHOUSE_TCP_PORT"])
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        up = run(stack_env, "stack", "up", "--clickhouse-server")
    assert up.returncode == 1
    assert f"port {port} (clickhouse_tcp)" in up.stderr
    assert status(stack_env)["kafka"]["state"] == "stopped"  # rolled back


def test_missing_java_names_the_fix(stack_env: dict[str, str], tmp_path: Path) -> None:
    env = {**stack_env, "JAVA_HOME": str(tmp_path / "no-jdk")}
    up = run(env, "stack", "up")
    assert up.returncode == 1
    assert "Java was not found" in up.stderr
    assert "apt-get install openjdk-17-jre-headless" in up.stderr


def test_missing_maven_names_the_fix(stack_env: dict[str, str], tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    java = shutil.which("java")
    assert java is not None
    (bin_dir / "java").symlink_to(java)
    env = {**stack_env, "PATH": str(bin_dir), "LINKWATCH_CACHE_DIR": str(tmp_path / "empty-cache")}
    env.pop("JAVA_HOME", None)
    up = run(env, "stack", "up")
    assert up.returncode == 1
    assert "Maven (mvn) was not found" in up.stderr
    assert status(env)["kafka"]["state"] == "stopped"


def test_a_failed_maven_download_is_reported_with_its_log(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **stack_env,
        "LINKWATCH_CACHE_DIR": str(tmp_path / "cache"),
        "LINKWATCH_KAFKA_VERSION": "9.9.9",
    }
    up = run(env, "stack", "up")
    assert up.returncode == 1
    assert "Maven could not download the Kafka broker" in up.stderr
    assert "maven.log" in up.stderr
    assert not (tmp_path / "cache" / "kafka-9.9.9" / "libs").exists()
    assert status(env)["kafka"]["state"] == "stopped"
