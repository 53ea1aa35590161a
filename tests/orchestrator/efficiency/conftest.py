"""Tiny models only: one intra-op thread (as tests/models/conftest.py explains, OpenMP threads spinning
against other processes on a busy 2-core machine slow tiny tensors down many times over)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
