"""A stored efficiency study made of rows (no training): four architectures at four sizes, with decode
costs shaped like the real ones (the Transformer's grows with L, the recurrent ones stay flat)."""

from __future__ import annotations

from orchestrator.store import Store
from orchestrator.store.efficiency import headline_metrics, record_efficiency
from tests.factories import make_trial

SWEEP = "eff-rows"
CONTEXTS = (512, 2048, 8192, 32768)
# label -> (decode tokens/s at 512, its exponent in L, state bytes at 512, its exponent, loss at 8x / 1x)
SHAPES = {
    "transformer": (2000.0, -0.5, 65_536, 1.0, 1.00),
    "retnet": (1000.0, 0.0, 32_768, 0.0, 1.02),
    "mamba": (600.0, 0.0, 29_184, 0.0, 1.05),
    "mega": (800.0, 0.0, 1_187_840, 0.0, 0.99),
}
SIZES = (20_000.0, 50_000.0, 100_000.0, 200_000.0)


def measurement_rows(label: str, size: float) -> list[dict]:
    tps0, tps_exp, bytes0, bytes_exp, extrapolation = SHAPES[label]
    slower = size / SIZES[0]  # a larger model decodes more slowly
    rows = []
    for L in CONTEXTS:
        grown = L / CONTEXTS[0]
        rows += [
            {
                "measure": "decode",
                "length": L,
                "batch": 1,
                "metric": "tokens_per_s",
                "value": tps0 / slower * grown**tps_exp,
            },
            {
                "measure": "decode",
                "length": L,
                "batch": 1,
                "metric": "state_bytes",
                "value": bytes0 * grown**bytes_exp,
            },
            {
                "measure": "prefill",
                "length": L,
                "batch": 1,
                "metric": "tokens_per_s",
                "value": 1e5 / grown ** (0.5 if label == "transformer" else 0),
            },
        ]
        if L <= 2048:
            rows.append(
                {
                    "measure": "decode",
                    "length": L,
                    "batch": 4,
                    "metric": "tokens_per_s",
                    "value": 3 * tps0 / slower * grown**tps_exp,
                }
            )
    base = 3.0 - 0.3 * (size / SIZES[-1])
    for factor in (1, 2, 4, 8):
        loss = base * (1 + (extrapolation - 1) * (factor - 1) / 7)
        rows.append({"measure": "extrapolation", "length": 128 * factor, "metric": "loss", "value": loss})
        rows += [
            {
                "measure": "position",
                "length": 128 * factor,
                "position": p,
                "metric": "loss",
                "value": loss + 0.1 / (1 + p),
            }
            for p in (0, 16, 32, 64, 128, 256, 512)
            if p < 128 * factor
        ]
    return rows


def store_study(url: str) -> None:
    """Write the study into the store at ``url`` (migrated on open)."""
    store = Store.open(url)
    try:
        store.upsert_sweep(SWEEP, {"name": SWEEP}, workdir=None, code_version="test")
        for label in SHAPES:
            for size in SIZES:
                trial_id = f"{label[:4]}{int(size)}"
                store.add_trials(
                    SWEEP,
                    [
                        make_trial(
                            trial_id,
                            label=label,
                            arch=label,
                            size_target=size,
                            params_non_embedding=int(size),
                            flops_6nd=6.0 * size * 63_488,  # what a law of compute reads
                        )
                    ],
                )
                rows = measurement_rows(label, size)
                attempt = store.claim(trial_id)
                record_efficiency(store, trial_id, attempt, rows)
                loss = next(
                    r["value"] for r in rows if r["measure"] == "extrapolation" and r["length"] == 128
                )
                copy_score = (
                    {"transformer": 0.6, "retnet": 0.3, "mamba": 0.4, "mega": 0.5}[label] * size / SIZES[-1]
                )
                final = {**headline_metrics(rows), "copy_score": copy_score}
                store.finish(trial_id, attempt, final_val_loss=loss, final_metrics=final)
    finally:
        store.close()
