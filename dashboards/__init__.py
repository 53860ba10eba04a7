"""The warehouse model (ClickHouse DDL), the SQL behind every panel, and the dashboards."""
