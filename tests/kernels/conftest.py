"""Shared fixtures for the kernel tests: tiny shapes, one intra-op thread (2 shared CPU cores)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    """Tiny tensors gain nothing from intra-op threads; OpenMP threads spinning against other processes
    on a busy 2-core machine only slow tests down. Restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
