"""A seeded synthetic population with provider extracts and known truth (``linkwatch synth``)."""

from linkwatch.schemas.synth.generator import SynthConfig, SynthData, generate, write_outputs
from linkwatch.schemas.synth.injection import Signal, SignalSpecError, parse_signal

__all__ = [
    "Signal",
    "SignalSpecError",
    "SynthConfig",
    "SynthData",
    "generate",
    "parse_signal",
    "write_outputs",
]
