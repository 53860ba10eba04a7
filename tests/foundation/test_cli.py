from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main
from typer.testing import CliRunner

from linkwatch.streams.cli import app

runner = CliRunner()


def _all_commands() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(cmd: object, path: list[str]) -> None:
        paths.append(path)
        # typer ships its own copy of click, so look for sub-commands by shape.
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(root, [])
    return paths


@pytest.mark.parametrize("path", _all_commands(), ids=lambda p: " ".join(p) or "linkwatch")
def test_every_command_has_help_with_an_example(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output


def test_version_names_linkwatch_and_its_engines() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert "linkwatch" in result.output
    assert "chdb" in result.output
    assert "librdkafka" in result.output


def test_the_console_script_is_installed() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "linkwatch.streams.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "stack" in out.stdout


def test_a_bad_setting_is_one_clear_line() -> None:
    result = runner.invoke(app, ["stack", "status"], env={"LINKWATCH_KAFKA_PORT": "0"})
    assert result.exit_code == 1
    assert "LINKWATCH_KAFKA_PORT='0' is not valid" in result.output
