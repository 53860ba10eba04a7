"""Local servers for development and tests: an Apache Kafka broker (KRaft) and a
ClickHouse server, installed and started by linkwatch itself.

The same code runs behind ``linkwatch stack up|down|status`` and the pytest
fixtures, so what the tests exercise is what an operator starts.
"""
