"""Row factories for tests that need stored trials without training them."""

from __future__ import annotations

from typing import Any


def make_trial(trial_id: str, **changes: Any) -> dict[str, Any]:
    row = {
        "id": trial_id,
        "arch": "transformer",
        "label": "transformer",
        "size_target": 20_000.0,
        "params_total": 33_240,
        "params_embedding": 12_336,
        "params_non_embedding": 20_904,
        "state_size": 9216,
        "seq_len": 64,
        "tokens": 63_488,
        "steps_total": 31,
        "flops_6nd": 6.0 * 20_904 * 63_488,
        "flops_exact": 189_504.0 * 63_488,
        "seed": 0,
        "lr": 3e-3,
        "config": {"arch": "transformer", "model": {"d_model": 24}, "id_hint": trial_id},
    }
    return row | changes
