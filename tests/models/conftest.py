"""Shared fixtures for the models tests: tiny shapes only (the CI machine has 2 shared cores)."""

from __future__ import annotations

import pytest
import torch

import models


@pytest.fixture(autouse=True)
def _single_thread():
    """Tiny tensors gain nothing from intra-op threads, and on a busy 2-core machine OpenMP threads
    spinning against other processes made one 50-step test 10-50x slower. Restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(params=models.available())
def arch_name(request) -> str:
    """Every registered architecture: the contract tests run on each one a later issue adds."""
    return request.param
