"""A synthetic study of every registered architecture, written straight into a store (nothing trained).

Each architecture's final loss follows a known Chinchilla law plus 0.3% noise, on a grid of 4 sizes x 3
token counts (12 runs: enough for a chinchilla fit), except ``SHORT``, which has one token count. No two
runs share a compute budget, so every architecture gets the same isoFLOP notice: the case where the
report and dashboard used to repeat a notice once per architecture.
"""

from __future__ import annotations

import numpy as np

from orchestrator.store import Store
from tests.factories import make_trial

# The registry's names (`models.available()`), written out so the fixture needs no torch import.
ARCHITECTURES = (
    "gated_deltanet", "gla", "griffin", "hawk", "mamba", "mamba2", "mega", "retnet", "rwkv6", "rwkv7",
    "s4d", "transformer",
)  # fmt: skip
SIZES = (2e4, 5e4, 1.2e5, 3e5)
TOKENS = (2e5, 6e5, 1.8e6)
NOISE = 0.003
# Stopped after the first token count: 4 runs of one length, too few for a chinchilla fit, so these
# share one "no chinchilla law" notice (and have a panel without a law).
SHORT = ("mega", "retnet", "s4d")


def law(index: int) -> dict[str, float]:
    """The transformer's law, and for the others a spread of size and data terms, so some gaps to the
    transformer grow with compute and others shrink."""
    if ARCHITECTURES[index] == "transformer":
        return {"E": 1.8, "A": 40.0, "alpha": 0.34, "B": 90.0, "beta": 0.30}
    step = index / (len(ARCHITECTURES) - 1) - 0.5  # -0.5 .. 0.5
    return {"E": 1.8, "A": 40.0 * (1 + 0.6 * step), "alpha": 0.34, "B": 90.0, "beta": 0.30 + 0.04 * step}


def write_many_architecture_sweep(url: str, name: str = "twelve") -> None:
    store = Store.open(url)
    spec = {"name": name, "architectures": list(ARCHITECTURES), "sizes": list(SIZES), "tokens": list(TOKENS)}
    store.upsert_sweep(name, spec, workdir=None, code_version="git:abc123def456")
    rng = np.random.default_rng(0)
    rows, finals = [], {}
    for index, arch in enumerate(ARCHITECTURES):
        p = law(index)
        for i, params in enumerate(SIZES):
            for tokens in TOKENS[:1] if arch in SHORT else TOKENS:
                trial_id = f"{name}-{arch}-{i}-{tokens:.0e}"
                rows.append(
                    make_trial(
                        trial_id,
                        arch=arch,
                        label=arch,
                        size_target=params,
                        params_non_embedding=int(params),
                        tokens=int(tokens),
                        flops_6nd=6.0 * int(params) * int(tokens),
                        config={"arch": arch, "model": {"d_model": 16 * (i + 1)}, "id_hint": trial_id},
                    )
                )
                loss = p["E"] + p["A"] / params ** p["alpha"] + p["B"] / tokens ** p["beta"]
                finals[trial_id] = loss * (1 + NOISE * rng.standard_normal())
    store.add_trials(name, rows)
    for trial_id, loss in finals.items():
        store.finish(trial_id, store.claim(trial_id), final_val_loss=loss)
    store.close()
