"""Outbreak and trend detectors over weekly and daily series, and small-number rules."""
