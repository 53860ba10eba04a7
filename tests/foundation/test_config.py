from __future__ import annotations

from pathlib import Path

import pytest

from linkwatch.streams.config import ConfigError, Settings


def test_defaults_use_the_local_broker_and_the_embedded_warehouse() -> None:
    s = Settings.load(environ={})
    assert s.local_kafka
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert s.clickhouse_url is None
    assert s.embedded_warehouse_dir == Path.home() / ".local/share/linkwatch/warehouse"
    assert s.kafka_version == "4.4.0"


def test_environment_overrides_the_toml_file(tmp_path: Path) -> None:
    config = tmp_path / "linkwatch.toml"
    config.write_text('[linkwatch]\nkafka_port = 19092\ndata_dir = "/srv/lw"\n')
    s = Settings.load(config, environ={"LINKWATCH_KAFKA_PORT": "29092"})
    assert s.kafka_port == 29092
    assert s.data_dir == Path("/srv/lw")
    assert s.embedded_warehouse_dir == Path("/srv/lw/warehouse")


def test_config_file_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "lw.toml"
    config.write_text('clickhouse_url = "clickhouse://db.internal:9000/linkwatch"\n')
    s = Settings.load(environ={"LINKWATCH_CONFIG": str(config)})
    assert s.clickhouse_url == "clickhouse://db.internal:9000/linkwatch"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        (
            {"LINKWATCH_KAFKA_PORT": "70000"},
            "LINKWATCH_KAFKA_PORT='70000' is not valid: expected a TCP port",
        ),
        ({"LINKWATCH_KAFKA_PORT": "abc"}, "expected a TCP port"),
        ({"CLICKHOUSE_URL": "http://x:8123"}, "CLICKHOUSE_URL='http://x:8123' is not valid"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "nohost"}, "expected host:port"),
        ({"LINKWATCH_KAFKA_VERSION": "3.6.0"}, "Kafka 3.9.0 or newer"),
        ({"LINKWATCH_KAFKA_HEAP": "lots"}, "JVM heap size"),
        ({"LINKWATCH_START_TIMEOUT": "-1"}, "seconds > 0"),
        ({"LINKWATCH_SHARED_SINK": "perhaps"}, "expected true or false"),
        ({"LINKWATCH_SHARED_SINK": "true"}, "needs a ClickHouse server (CLICKHOUSE_URL)"),
    ],
)
def test_invalid_values_name_the_setting_the_value_and_what_was_expected(
    env: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(environ=env)
    assert fragment in str(info.value)


def test_unknown_keys_in_the_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "lw.toml"
    config.write_text("kafka_prot = 9092\n")
    with pytest.raises(ConfigError, match="unknown setting 'kafka_prot'"):
        Settings.load(config, environ={})


def test_a_broken_file_is_reported_with_its_path(tmp_path: Path) -> None:
    config = tmp_path / "lw.toml"
    config.write_text("kafka_port = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        Settings.load(config, environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(tmp_path / "missing.toml", environ={})


def test_two_servers_cannot_share_a_port() -> None:
    with pytest.raises(ConfigError, match="both 9092"):
        Settings.load(environ={"LINKWATCH_CLICKHOUSE_TCP_PORT": "9092"})


def test_a_shared_load_with_a_clickhouse_server() -> None:
    env = {"LINKWATCH_SHARED_SINK": "yes", "CLICKHOUSE_URL": "clickhouse://localhost:19000"}
    assert Settings.load(environ=env).shared_sink
    assert not Settings.load(environ={}).shared_sink
