"""The Efficiency page's data: measurement rows from the store, grouped into models, laid out as tables.
No streamlit here. The aggregation (models, frontier, crossover, claims) is the report's own
(orchestrator/report/efficiency_points.py, efficiency_claims.py), so both show the same numbers.
"""

from __future__ import annotations

import pandas as pd

from orchestrator.report.efficiency_claims import efficiency_claims
from orchestrator.report.efficiency_points import ModelCosts, Relative, model_costs, pareto_front
from orchestrator.store import Store

# recall studies store a state size in numbers; the page draws it in bytes of fp32 state
RECALL_BYTES_PER_NUMBER = 4


def measurement_rows(store: Store, sweep: str | None) -> pd.DataFrame:
    """Every efficiency measurement of the done trials in scope, one number a row (empty if none)."""
    from orchestrator.store.efficiency import MEASUREMENT_COLUMNS, TRIAL_COLUMNS, efficiency_study

    columns = [*TRIAL_COLUMNS, "final_val_loss", "copy_score", *MEASUREMENT_COLUMNS]
    return pd.DataFrame.from_records(efficiency_study(store, sweep), columns=columns)


def models_of(rows: pd.DataFrame) -> list[ModelCosts]:
    return model_costs(rows.to_dict("records"))


def contexts_of(models: list[ModelCosts]) -> list[int]:
    """Context lengths every model was measured at (batch 1)."""
    return sorted(set.intersection(*(set(m.contexts) for m in models))) if models else []


def model_table(models: list[ModelCosts], context: int) -> pd.DataFrame:
    front = {id(m) for m in pareto_front(models, context)}
    return pd.DataFrame.from_records(
        [
            {
                "architecture": m.label,
                "size": m.size_target,
                "params": m.params,
                "val_loss": m.val_loss,
                "decode_ms_per_token": m.decode_ms(context),
                "state_bytes": m.state_bytes.get(context),
                "flatness": m.flatness(),
                "copy_score": m.copy_score,
                "on_frontier": id(m) in front,
            }
            for m in models
        ]
    )


def relative_table(relatives: list[Relative]) -> pd.DataFrame:
    return pd.DataFrame.from_records(
        [
            {
                "model": r.model.name,
                "baseline": r.baseline.name,
                "decode cheaper from L": r.crossover_text,
                "crossover L": r.crossover,
                "state smaller from L": r.memory_crossover_text,
                **{f"speedup L={L}": v for L, v in sorted(r.speedup.items())},
                **{f"state saving L={L}": v for L, v in sorted(r.memory_saving.items())},
            }
            for r in relatives
        ]
    )


def claims_table(models: list[ModelCosts], baseline: str) -> pd.DataFrame:
    return pd.DataFrame.from_records(
        [
            {"claim": c.claim, "tested at our scale as": c.tested_as, "measured": c.measured,
             "verdict": c.verdict, "what our scale cannot test": c.untestable}
            for c in efficiency_claims(models, baseline)
        ]
    )  # fmt: skip


def recall_state_points(models: list[ModelCosts], context: int, recall: pd.DataFrame | None):
    """(label, name, state bytes, accuracy): the efficiency models' copy scores at ``context``, and any
    recall-study points in scope (``recall_view.recall_points``: state in numbers, drawn as fp32 bytes)."""
    points = [
        (m.label, m.name, m.state_bytes[context], m.copy_score)
        for m in models
        if context in m.state_bytes and m.copy_score is not None
    ]
    if recall is not None:
        points += [
            (
                f"{row.label} (recall study)",
                f"width {row.width:g}",
                row.state_size * RECALL_BYTES_PER_NUMBER,
                row.mean,
            )
            for row in recall.itertuples(index=False)
        ]
    return points
