"""Efficiency measurements on built (possibly trained) models: decode speed and state bytes after a long
context, prefill / training throughput against length, and length extrapolation of the loss.

One job per module: ``decode`` (prefill then step, tokens/s, flatness), ``memory`` (bytes of any state,
the Transformer's analytic KV-cache count), ``prefill`` (forward or forward + backward tokens/s per
length), ``extrapolation`` (loss at multiples of the training length and by position bucket). Imports
torch and ``models`` only (never ray, deepspeed or the store): the kind of study calls these on a worker.
"""

from orchestrator.efficiency.decode import DecodeMeasurement, decode_flatness, decode_sweep, measure_decode
from orchestrator.efficiency.extrapolation import ExtrapolationCurve, evaluate_extrapolation
from orchestrator.efficiency.memory import kv_cache_bytes_analytic, state_bytes
from orchestrator.efficiency.prefill import measure_prefill

__all__ = [
    "DecodeMeasurement",
    "ExtrapolationCurve",
    "decode_flatness",
    "decode_sweep",
    "evaluate_extrapolation",
    "kv_cache_bytes_analytic",
    "measure_decode",
    "measure_prefill",
    "state_bytes",
]
