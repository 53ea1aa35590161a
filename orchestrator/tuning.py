"""Learning-rate tuning: pick the best candidate of a size, or extrapolate a fitted lr(params) rule.

A tuning trial is a short run at one candidate (lr, optionally beta2). Per (architecture, size) the
candidate with the lowest final validation loss wins; a diverged or failed candidate counts as worst
(its loss is +inf). With ``tuning.rule: fit`` the winners of the tuned (smaller) sizes give a power
law ``lr = A * params^b`` per architecture (least squares in log-log), extrapolated to the larger
sizes. Pure functions over plain data: the scheduler (orchestrator/scheduling/dependencies.py)
gathers the trials and stores the choices.
"""

from __future__ import annotations

import math
from typing import Any

FINISHED = ("done", "diverged", "failed")


def candidate(trial: Any) -> dict[str, Any]:
    """A tuning trial as a candidate: ``{lr, loss, trial_id, status, beta2?}`` (loss inf unless done)."""
    loss = trial.final_val_loss if trial.status == "done" and trial.final_val_loss is not None else math.inf
    training = trial.trial_config.training
    out = {"lr": float(training.lr), "loss": loss, "trial_id": trial.id, "status": trial.status}
    if training.beta2 is not None:
        out["beta2"] = float(training.beta2)
    return out


def choose_best(candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The lowest-loss candidate; ties go to the smaller lr (the safer one). None if all diverged/failed."""
    finite = [c for c in candidates if math.isfinite(c["loss"])]
    if not finite:
        return None
    return min(finite, key=lambda c: (c["loss"], c["lr"]))


def fit_lr_rule(points: list[tuple[float, float]]) -> dict[str, float]:
    """Least squares of log lr on log params over ``(params, lr)`` points: ``{"A": .., "exponent": ..}``."""
    if len({p for p, _ in points}) < 2:
        raise ValueError("an lr(params) rule needs tuned learning rates at two or more different sizes")
    xs = [math.log(p) for p, _ in points]
    ys = [math.log(lr) for _, lr in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return {"A": math.exp(my - slope * mx), "exponent": slope}


def rule_lr(rule: dict[str, float], params: float) -> float:
    return float(rule["A"] * params ** rule["exponent"])


def json_safe(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Candidates for the store's JSON column: an infinite loss (diverged/failed) becomes None."""
    return [{**c, "loss": c["loss"] if math.isfinite(c["loss"]) else None} for c in candidates]
