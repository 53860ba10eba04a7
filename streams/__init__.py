"""linkwatch's I/O shell: the CLI, configuration, the Kafka and ClickHouse adapters
and (in later stages) the Faust application around the pure packages."""
