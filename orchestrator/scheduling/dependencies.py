"""Which queued trials may start: tuned trials wait for their tuning choice, branches for their trunk.

``Dependencies.check(trial, by_id)`` answers ``("ready", overrides)``, ``("wait", why)`` or
``("blocked", why)`` from a snapshot of the sweep's trials (one query per scheduling pass):

- a branch is ready once its trunk is ``done`` (the trunk keeps a checkpoint at every branch start);
  blocked if the trunk ended failed or diverged.
- a trial whose lr is ``tuned`` is ready once its (architecture, size) has a tuning choice, which is
  made here as soon as the tuning trials it needs have finished: its own size's (a search), or every
  tuned size of its architecture (a fitted rule, its value kept inside the searched lr grid).
  ``overrides`` then carries the chosen lr (and beta2).
Imports only the store, so it is tested without Ray.
"""

from __future__ import annotations

from typing import Any

from orchestrator.store import Store
from orchestrator.tuning import FINISHED, candidate, choose_best, fit_lr_rule, json_safe, rule_lr
from orchestrator.units import format_count


def size_label(size_target: float) -> str:
    """How a size is named in ``tuning_choices.label`` (``20k``)."""
    return format_count(size_target)


class Dependencies:
    def __init__(self, store: Store, sweep_name: str):
        self.store, self.sweep = store, sweep_name
        self.choices: dict[tuple[str, str], dict[str, Any]] = {}
        self._load_choices()

    def _load_choices(self) -> None:
        for row in self.store.tuning_results(self.sweep):
            self.choices[(row["arch"], row["label"])] = row

    def check(self, trial: Any, by_id: dict[str, Any]) -> tuple[str, Any]:
        role = getattr(trial, "role", "main") or "main"
        if role == "branch":
            parent = by_id.get(trial.parent_id) or self.store.get_trial(trial.parent_id)
            if parent is None:
                return "blocked", f"its trunk {trial.parent_id} is not stored"
            if parent.status in ("failed", "diverged"):
                return "blocked", f"its trunk {parent.id[:8]} {parent.status}; `ceiling resume` retries it"
            if parent.status != "done":
                return "wait", f"trunk {parent.id[:8]} not done"
        if not trial.trial_config.training.tuned:
            return "ready", {}
        choice = self._choice(trial, by_id)
        if isinstance(choice, tuple):
            return choice
        overrides = {"lr": choice["lr"]}
        if choice.get("beta2") is not None:
            overrides["beta2"] = choice["beta2"]
        return "ready", overrides

    def _choice(self, trial: Any, by_id: dict[str, Any]) -> dict[str, Any] | tuple[str, str]:
        key = (trial.label, size_label(trial.size_target))
        if key in self.choices:
            return self.choices[key]
        tuning = [
            t for t in by_id.values() if getattr(t, "role", "main") == "tuning" and t.label == trial.label
        ]
        sizes: dict[float, list[Any]] = {}
        for t in tuning:
            sizes.setdefault(t.size_target, []).append(t)
        needed = [trial.size_target] if trial.size_target in sizes else sorted(sizes)
        if not needed:
            return "blocked", f"no tuning trials for {trial.label} in this sweep"
        unfinished = [t for s in needed for t in sizes[s] if t.status not in FINISHED]
        if unfinished:
            return "wait", f"{len(unfinished)} tuning trial(s) of {trial.label} not finished"
        best: dict[float, dict[str, Any]] = {}
        for size in needed:
            candidates = [candidate(t) for t in sorted(sizes[size], key=lambda t: t.id)]
            winner = choose_best(candidates)
            if winner is None:
                return (
                    "blocked",
                    f"every tuning candidate of {trial.label} at {size_label(size)} diverged or failed",
                )
            best[size] = winner
            self._record(trial.label, size, "search", winner, {"candidates": json_safe(candidates)})
        if trial.size_target not in sizes:  # a larger size: extrapolate the rule fitted on the tuned ones
            params = {s: float(sizes[s][0].params_non_embedding) for s in needed}
            rule = fit_lr_rule([(params[s], best[s]["lr"]) for s in needed])
            unclipped = rule_lr(rule, float(trial.params_non_embedding))
            # Two or three noisy optima can give a steep slope: never leave the searched grid.
            grid = [candidate(t)["lr"] for s in needed for t in sizes[s]]
            lr = min(max(unclipped, min(grid)), max(grid))
            largest = best[needed[-1]]
            details = {
                "candidates": [],
                "rule": {
                    "form": "lr = A * non_embedding_params ** exponent",
                    **rule,
                    "fitted_on": [
                        {"label": size_label(s), "params": params[s], "lr": best[s]["lr"]} for s in needed
                    ],
                    "params": float(trial.params_non_embedding),
                    "unclipped_lr": unclipped,
                    "clipped_to_grid": lr != unclipped,
                },
            }
            chosen = {"lr": lr, **({"beta2": largest["beta2"]} if "beta2" in largest else {})}
            self._record(trial.label, trial.size_target, "rule", chosen, details)
        return self.choices[key]

    def _record(self, arch: str, size: float, method: str, chosen: dict[str, Any], details: dict) -> None:
        label = size_label(size)
        if (arch, label) in self.choices:
            return
        self.store.record_tuning_choice(
            self.sweep,
            arch=arch,
            label=label,
            method=method,
            lr=chosen["lr"],
            beta2=chosen.get("beta2"),
            details=details,
        )
        self._load_choices()  # the stored row wins if another orchestrator recorded one first
