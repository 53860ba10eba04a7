"""Avro schemas for every linkwatch topic, and the code that loads, fingerprints and checks them."""
