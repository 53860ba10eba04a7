"""Probabilistic (Fellegi-Sunter) record linkage of identity records across providers."""
