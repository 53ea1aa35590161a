"""Corpora, tokenizers and the token caches that training reads from."""

from orchestrator.data.prepare import PreparedData, prepare_data

__all__ = ["PreparedData", "prepare_data"]
